package ocspfetch_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"log"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

// The one-line wiring: the Fetcher's OCSPRequest method is a tlsserver
// 'OCSPRequest' listener.
func ExampleFetcher_OCSPRequest() {
	f, err := ocspfetch.New(ocspfetch.Options{
		OnEvent: func(e ocspfetch.Event) {
			if e.Kind == ocspfetch.EventMustStapleMissing {
				log.Printf("certificate %s will be refused by Must-Staple clients: %v", e.Serial, e.Err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	// srv.OnOCSPRequest(f.OCSPRequest)
	var listener func(cert, issuer []byte, cb func(err error, resp []byte)) = f.OCSPRequest
	_ = listener
}

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
