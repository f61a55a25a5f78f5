package crlfetch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tlsemit/tlsemit/crlfetch"
)

// A net/http server on plain crypto/tls requires client certificates and
// refuses revoked ones: crlfetch's VerifyConnection is crypto/tls's own
// hook. With zero options the CRLs come from the client certificates' CRL
// distribution points. Here a certificate authority publishes its CRL on
// an in-process HTTP server, and two clients connect: one good, one whose
// certificate the CA has revoked.
func ExampleFetcher_VerifyConnection() {
	ca, issue, publish := startCA()
	defer publish.Close()
	good, revoked := issue("good client"), issue("revoked client")
	publish.revoke(revoked.Leaf)

	f, err := crlfetch.New(crlfetch.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello, %s", r.TLS.PeerCertificates[0].Subject.CommonName)
		}),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{publish.serverCertificate("localhost")},
			ClientAuth:   tls.RequireAndVerifyClientCert, // Node's requestCert and rejectUnauthorized
			ClientCAs:    pool,                           // Node's ca
			// f.VerifyConnection alone does the work; this one also
			// prints the Node code of a refusal.
			VerifyConnection: func(cs tls.ConnectionState) error {
				err := f.VerifyConnection(cs)
				var coded interface{ Code() string }
				if errors.As(err, &coded) {
					fmt.Println("refused:", coded.Code()) // Node's authorizationError
				}
				return err
			},
		},
		ErrorLog: log.New(io.Discard, "", 0), // handshake errors are printed above
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	for _, cert := range []tls.Certificate{good, revoked} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			fmt.Println(cert.Leaf.Subject.CommonName, "could not connect")
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		fmt.Println(string(body))
	}
	// Output:
	// hello, good client
	// refused: CERT_REVOKED
	// revoked client could not connect
}

// A CA whose certificates name no CRL distribution point: its CRL is a
// file, given as a Source, and read again whenever it changes (Node's
// fs.watch plus setSecureContext, done for you).
func ExampleSource_file() {
	ca, _, publish := startCA()
	defer publish.Close()
	client := publish.issue("client", false) // no CRL distribution point
	chains := [][]*x509.Certificate{{client.Leaf, ca}}

	path := filepath.Join(os.TempDir(), fmt.Sprintf("example-%d.crl", time.Now().UnixNano()))
	defer os.Remove(path)
	os.WriteFile(path, publish.crl(), 0o600) // PEM or DER

	fetched := make(chan struct{}, 1)
	f, err := crlfetch.New(crlfetch.Options{
		Sources:          []crlfetch.Source{{File: path, Issuer: ca}},
		FilePollInterval: 10 * time.Millisecond,
		OnEvent: func(e crlfetch.Event) {
			if e.Kind == crlfetch.EventFetched {
				fetched <- struct{}{}
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	<-fetched // read at New
	fmt.Println("before:", f.Check(context.Background(), chains))

	publish.revoke(client.Leaf)
	os.WriteFile(path+".new", publish.crl(), 0o600)
	os.Rename(path+".new", path)
	<-fetched // read again
	err = f.Check(context.Background(), chains)
	fmt.Println("after:", errors.Is(err, crlfetch.ErrRevoked))
	// Output:
	// before: <nil>
	// after: true
}

// ca is a throwaway certificate authority: its key, and its CRL, served
// over HTTP and written on demand.
type ca struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	mu      sync.Mutex
	revoked []x509.RevocationListEntry
	number  int64
	serial  int64
	srv     *httptest.Server
}

// startCA makes a CA and starts its CRL host. issue makes client
// certificates whose CRL distribution point is that host; c.issue(name,
// false), without one.
func startCA() (*x509.Certificate, func(name string) tls.Certificate, *ca) {
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	c := &ca{key: key}
	c.cert = must(x509.ParseCertificate(must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key))))
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(c.crl()) }))
	return c.cert, func(name string) tls.Certificate { return c.issue(name, true) }, c
}

// issue makes a client certificate, naming the CRL host as its CRL
// distribution point with withCDP.
func (c *ca) issue(name string, withCDP bool) tls.Certificate {
	c.mu.Lock()
	c.serial++
	serial := c.serial
	c.mu.Unlock()
	{
		k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		t := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if withCDP {
			t.CRLDistributionPoints = []string{c.srv.URL + "/ca.crl"}
		}
		der := must(x509.CreateCertificate(rand.Reader, t, c.cert, k.Public(), c.key))
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: must(x509.ParseCertificate(der))}
	}
}

// serverCertificate makes a server certificate for name.
func (c *ca) serverCertificate(name string) tls.Certificate {
	c.mu.Lock()
	c.serial++
	serial := c.serial
	c.mu.Unlock()
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	t := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, t, c.cert, k.Public(), c.key))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// revoke adds cert to the CRL.
func (c *ca) revoke(cert *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked = append(c.revoked, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now()})
}

// crl returns the CRL now, in PEM, under a new number.
func (c *ca) crl() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.number++
	der := must(x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(c.number), ThisUpdate: time.Now().Add(-time.Minute + time.Duration(c.number)*time.Second),
		NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: c.revoked,
	}, c.cert, c.key))
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func (c *ca) Close() { c.srv.Close() }

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
