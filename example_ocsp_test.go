package tlsemit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Node's documentation describes OCSP stapling in five steps. Here they are
// in Go, with the OCSP request written out by hand as a Node user writes it
// inside the listener (Example_ocspfetch does the same in one line).
func Example_ocspRequest() {
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// 2. The server receives the request and emits 'OCSPRequest'.
	srv.OnOCSPRequest(func(certDER, issuerDER []byte, cb tlsserver.OCSPCallback) {
		cert, _ := x509.ParseCertificate(certDER)
		issuer, _ := x509.ParseCertificate(issuerDER)
		// 3. It finds the responder URL in the certificate and asks the CA.
		url, err := ocspfetch.ResponderURL(cert)
		if err != nil {
			cb(nil, nil) // no responder: no staple
			return
		}
		req, _ := ocsp.CreateRequest(cert, issuer, nil)
		resp, err := http.Post(url, "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			cb(nil, nil)
			return
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		// 4. It hands the CA's answer back through the callback.
		cb(nil, der)
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}

	// 1. The client connects, asking for the certificate status (Go's
	// client always does).
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	// 5. The client validates the stapled response.
	staple, err := ocsp.ParseResponseForCert(conn.ConnectionState().OCSPResponse, pki.Cert.Leaf, pki.CA)
	if err != nil {
		panic(err)
	}
	fmt.Println("stapled status is good:", staple.Status == ocsp.Good)
	// Output: stapled status is good: true
}

// examplePKI stands in for what a deployment has: a CA, its OCSP
// responder, and a certificate for localhost whose AIA extension names
// that responder.
type examplePKI struct {
	CA        *x509.Certificate
	Roots     *x509.CertPool  // the clients trust the CA
	Cert      tls.Certificate // the server's: leaf, then the CA (OCSP clients need the issuer)
	responder *httptest.Server
}

func newPKI() *examplePKI {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	p := &examplePKI{Roots: x509.NewCertPool()}
	p.CA, err = x509.ParseCertificate(caDER)
	must(err)
	p.Roots.AddCert(p.CA)

	// The CA's OCSP responder, which knows one certificate: it is good.
	p.responder = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := ocsp.CreateResponse(p.CA, p.CA, ocsp.Response{
			Status: ocsp.Good, SerialNumber: big.NewInt(2),
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		}, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))

	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer: []string{p.responder.URL},
	}, p.CA, &key.PublicKey, caKey)
	must(err)
	leaf, err := x509.ParseCertificate(leafDER)
	must(err)
	p.Cert = tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: key, Leaf: leaf}
	return p
}

// Close stops the responder.
func (p *examplePKI) Close() { p.responder.Close() }
