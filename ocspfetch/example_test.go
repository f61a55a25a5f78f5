package ocspfetch_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

func ExampleResponderURL() {
	cert := &x509.Certificate{OCSPServer: []string{"ldap://directory.example/ocsp", "http://ocsp.example.com/"}}
	u, err := ocspfetch.ResponderURL(cert)
	fmt.Println(u, err)

	_, err = ocspfetch.ResponderURL(&x509.Certificate{})
	fmt.Println(err)
	// Output:
	// http://ocsp.example.com/ <nil>
	// ocspfetch: certificate has no http(s) OCSP responder URL
}

func ExampleMustStaple() {
	tlsFeature := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}
	statusRequest, _ := asn1.Marshal([]int{5})
	cert := &x509.Certificate{Extensions: []pkix.Extension{{Id: tlsFeature, Value: statusRequest}}}
	fmt.Println(ocspfetch.MustStaple(cert))
	fmt.Println(ocspfetch.MustStaple(&x509.Certificate{}))
	// Output:
	// true
	// false
}
