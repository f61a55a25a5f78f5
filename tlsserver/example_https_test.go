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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// Node's https.createServer(options, handler), complete:
//
//	const server = https.createServer({ key, cert }, handler); // ALPN: http/1.1
//	server.on('OCSPRequest', (cert, issuer, cb) => cb(null, staple));
//	server.listen(8443, '127.0.0.1');
//	// later: server.close(); server.closeAllConnections();
//
// In Go, tlsserver does the TLS and its events, and serves Options.HTTP on
// the connections it establishes, with HTTP/2 (ALPN offers "h2" and
// "http/1.1" unless Config.NextProtos says otherwise).
func Example_httpsCreateServer() {
	cert, roots := throwawayPKI() // your key and certificate chain: tls.LoadX509KeyPair

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s", r.Proto)
	})
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},
		HTTP:         &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
	})
	if err != nil {
		panic(err)
	}
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		cb(nil, nil) // see ocspfetch for the real staple
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil { // server.listen
		panic(err)
	}

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get(fmt.Sprintf("https://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	// server.close() and server.closeAllConnections(): Shutdown with a
	// context that has ended closes every connection at once (with a live
	// one, it is server.close() alone: see ExampleServer_Shutdown).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.Shutdown(ctx)
	// Output: hello over HTTP/2.0
}

// Node's server.close() on SIGTERM. One Shutdown stops accepting, lets
// the handshakes under way and the request in flight finish, closes the
// idle keep-alive connections, and emits 'close' before it returns.
func ExampleServer_Shutdown() {
	cert, roots := throwawayPKI()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The deploy's SIGTERM arrives while this request is served.
		self, _ := os.FindProcess(os.Getpid())
		self.Signal(syscall.SIGTERM)
		<-ctx.Done()
		fmt.Fprintf(w, "answered over %s", r.Proto)
	})
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},
		HTTP:         &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
	})
	if err != nil {
		panic(err)
	}
	srv.OnClose(func() { fmt.Println("'close'") })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}

	answer := make(chan string, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
		resp, err := client.Get(fmt.Sprintf("https://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
		if err != nil {
			answer <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(body)
	}()

	<-ctx.Done() // SIGTERM (or Ctrl-C)
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println("Shutdown:", srv.Shutdown(shutdownCtx))
	fmt.Println(<-answer)
	// Output:
	// 'close'
	// Shutdown: <nil>
	// answered over HTTP/2.0
}

// throwawayPKI makes what a deployment gets from its CA, for the examples:
// a CA (in the pool the clients trust) and a certificate for localhost
// signed by it, served with the CA in its chain (OCSP clients need the
// issuer).
func throwawayPKI() (tls.Certificate, *x509.CertPool) {
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	sign := func(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		return c
	}
	now := time.Now()
	caKey, key := newKey(), newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ca := sign(caTmpl, caTmpl, caKey, caKey)
	leaf := sign(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, key, caKey)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf}, roots
}
