package tlsserver_test

import (
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
	"net"
	"net/http"
	"time"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// Node's
//
//	https.createServer({key, cert, ca, crl, requestCert: true, rejectUnauthorized: false}, (req, res) => {
//	  if (!req.socket.authorized) return res.writeHead(401).end(req.socket.authorizationError);
//	  res.end(`hello, ${req.socket.getPeerCertificate().subject.CN}`);
//	});
//
// in Go: requestCert with rejectUnauthorized false is Config.ClientAuth
// tls.RequestClientCert, and req.socket.authorized and authorizationError
// are RequestAuthorized.
func ExampleRequestAuthorized() {
	cert, roots := throwawayPKI()
	clientCA, crl, good, revoked := throwawayClientPKI()
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},
		CA:           []*x509.Certificate{clientCA},
		CRL:          [][]byte{crl}, // DER or PEM, as read from the file
		Config:       &tls.Config{ClientAuth: tls.RequestClientCert},
		HTTP: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, err := tlsserver.RequestAuthorized(r); !ok {
				http.Error(w, tlsserver.Code(err), http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, "hello, %s\n", r.TLS.PeerCertificates[0].Subject.CommonName)
		})},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	url := fmt.Sprintf("https://localhost:%d/", srv.Addr().(*net.TCPAddr).Port)
	for _, c := range []*tls.Certificate{good, revoked, nil} {
		cfg := &tls.Config{RootCAs: roots}
		if c != nil {
			cfg.Certificates = []tls.Certificate{*c}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 hello, good client
	// 401 CERT_REVOKED
	// 401 UNABLE_TO_GET_ISSUER_CERT
}

// With rejectUnauthorized (Config.ClientAuth
// tls.RequireAndVerifyClientCert) a revoked client is refused in the
// handshake, and 'tlsClientError' says why: Node's says only ECONNRESET.
func ExampleSecureContext_crl() {
	cert, roots := throwawayPKI()
	clientCA, crl, good, revoked := throwawayClientPKI()
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},
		CA:           []*x509.Certificate{clientCA},
		CRL:          [][]byte{crl},
		Config:       &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	reported := make(chan struct{})
	srv.OnTLSClientError(func(err error, _ net.Conn) {
		fmt.Println("refused:", tlsserver.Code(err)) // errors.Is(err, crlfetch.ErrRevoked) too
		close(reported)
	})
	srv.OnSecureConnection(func(c *tls.Conn) {
		ok, _ := tlsserver.Authorized(c)
		fmt.Fprintf(c, "authorized: %v\n", ok)
		c.Close()
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	for _, c := range []*tls.Certificate{good, revoked} {
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost",
			Certificates: []tls.Certificate{*c}})
		if err != nil {
			panic(err) // TLS 1.3: the client learns of the refusal when it reads
		}
		line, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			<-reported
			fmt.Println(c.Leaf.Subject.CommonName, "could not read")
			continue
		}
		fmt.Print(string(line))
	}
	// Output:
	// authorized: true
	// refused: CERT_REVOKED
	// revoked client could not read
}

// throwawayClientPKI makes what a deployment's client CA gives: its
// certificate (Node's ca), two client certificates, and its CRL listing
// the second one (Node's crl).
func throwawayClientPKI() (ca *x509.Certificate, crl []byte, good, revoked *tls.Certificate) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		panic(err)
	}
	if ca, err = x509.ParseCertificate(der); err != nil {
		panic(err)
	}
	issue := func(serial int64, name string) *tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca, &key.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	good, revoked = issue(2, "good client"), issue(3, "revoked client")
	crl, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(3), RevocationTime: now.Add(-time.Minute)}},
	}, ca, caKey)
	if err != nil {
		panic(err)
	}
	return ca, crl, good, revoked
}
