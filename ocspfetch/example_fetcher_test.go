package ocspfetch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

// The Fetcher's OCSPRequest method is a tlsserver 'OCSPRequest' listener,
// the whole of what a Node server does in server.on('OCSPRequest', …):
//
//	srv.OnOCSPRequest(f.OCSPRequest)
//
// Here a certificate authority and its OCSP responder run in-process; the
// certificate's staple is warmed with Prefetch, as a server does before it
// listens, and then the listener is called as the server calls it for a
// handshake that asks for the certificate's status.
func ExampleFetcher_OCSPRequest() {
	ca, cert, stop := startCA()
	defer stop()

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

	for _, r := range f.Prefetch(context.Background(), cert) {
		fmt.Println("prefetched:", r.Err == nil && r.Staple.Status == ocsp.Good)
	}

	// srv.OnOCSPRequest(f.OCSPRequest); then, for a handshake:
	f.OCSPRequest(cert.Certificate[0], cert.Certificate[1], func(err error, staple []byte) {
		resp, perr := ocsp.ParseResponseForCert(staple, cert.Leaf, ca)
		fmt.Println("stapled:", err == nil && perr == nil && resp.Status == ocsp.Good)
	})
	fmt.Println("answered from memory:", f.Stats().Hits == 1)
	// Output:
	// prefetched: true
	// stapled: true
	// answered from memory: true
}

// A net/http server on plain crypto/tls staples through the Fetcher by
// wrapping its tls.Config's GetCertificate, the form certmagic and autocert
// users know (there, f.GetCertificate(magic.GetCertificate)); here the
// wrapped function returns one certificate. The staple goes on a copy made
// for each connection: the certificate itself is never written to.
func ExampleFetcher_GetCertificate() {
	ca, cert, stop := startCA()
	defer stop()

	f, err := ocspfetch.New(ocspfetch.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }),
		TLSConfig: &tls.Config{GetCertificate: f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &cert, nil
		})},
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	// A client that checks the staple, as curl --cert-status does.
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "www.example.com"}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	staple, err := ocsp.ParseResponseForCert(resp.TLS.OCSPResponse, cert.Leaf, ca)
	fmt.Println("stapled:", err == nil && staple.Status == ocsp.Good)
	fmt.Println(string(body))
	fmt.Println("certificate untouched:", cert.OCSPStaple == nil)
	// Output:
	// stapled: true
	// hello
	// certificate untouched: true
}

// A certificate such as Let's Encrypt's since 2025 names no OCSP responder,
// only a CRL distribution point: there is nothing to staple, but the
// Fetcher, with no options, learns from the CRL whether it is revoked, and
// Certificates (and the status page) says so. Here its CA has revoked it.
func ExampleFetcher_Certificates() {
	cert, stop := startCRLOnlyCA()
	defer stop()

	f, err := ocspfetch.New(ocspfetch.Options{
		OnEvent: func(e ocspfetch.Event) {
			if e.Kind == ocspfetch.EventRevoked {
				fmt.Println("event: revoked, from its", strings.ToUpper(e.Source))
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	// Prefetch (or the first handshake, which does not wait for it) has
	// the CRL read.
	r := f.Prefetch(context.Background(), cert)[0]
	fmt.Println("staple:", r.Staple != nil, "revoked:", errors.Is(r.Err, ocspfetch.ErrRevoked))

	for _, c := range f.Certificates() {
		fmt.Println(c.Names[0], "source:", c.Source, "revoked:", c.CRL.Status == ocsp.Revoked, "stapled:", c.Stapled)
	}
	// Output:
	// event: revoked, from its CRL
	// staple: false revoked: true
	// www.example.org source: crl revoked: true stapled: false
}

// startCRLOnlyCA makes a certificate authority that publishes a CRL over
// HTTP and has revoked the certificate it returns, which names that CRL
// and no OCSP responder; stop stops the CRL's host.
func startCRLOnlyCA() (cert tls.Certificate, stop func()) {
	now := time.Now()
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CRL-only CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey))
	ca := must(x509.ParseCertificate(caDER))

	serial := big.NewInt(2)
	crl := must(x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: now.Add(-time.Minute)}},
	}, ca, caKey))
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(crl) }))

	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "www.example.org"}, DNSNames: []string{"www.example.org"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), CRLDistributionPoints: []string{host.URL + "/ca.crl"},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey))
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: must(x509.ParseCertificate(der))}, host.Close
}

// startCA makes a certificate authority and starts its OCSP responder. It
// returns the CA's certificate, a certificate the CA issued whose Authority
// Information Access names the responder (with the CA in its chain), and a
// function that stops the responder.
func startCA() (*x509.Certificate, tls.Certificate, func()) {
	now := time.Now()
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey))
	ca := must(x509.ParseCertificate(caDER))

	// An RFC 5019 responder: GET /<base64 request>, Good for an hour.
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		der, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
		var req *ocsp.Request
		if err == nil {
			req, err = ocsp.ParseRequest(der)
		}
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp := must(ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, caKey))
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))

	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "www.example.com"}, DNSNames: []string{"www.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), OCSPServer: []string{responder.URL},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey))
	cert := tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: must(x509.ParseCertificate(der))}
	return ca, cert, responder.Close
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
