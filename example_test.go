package tlsemit_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// pki stands in for your certificate, its CA and the CA's OCSP responder.
type pki struct {
	ca        *testpki.CA
	leaf      *testpki.Leaf
	responder *httptest.Server
}

func newPKI() *pki {
	p := &pki{ca: testpki.NewCA(testpki.Exit, "Example CA")}
	p.responder = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(p.ca.OCSPResponse(testpki.Exit, p.leaf.Cert, testpki.ResponseOptions{Status: ocsp.Good}))
	}))
	p.leaf = p.ca.Issue(testpki.Exit, testpki.LeafOptions{OCSPServer: []string{p.responder.URL}})
	return p
}

func (p *pki) close() { p.responder.Close() }

// dial connects like a browser: Go's client always sends status_request.
func (p *pki) dial(srv *tlsserver.Server) (*tls.Conn, error) {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	return tls.Dial("tcp", srv.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: roots})
}

// Node's documentation describes OCSP stapling in five steps. Here they are
// in Go, with the OCSP request written out by hand as a Node user writes it
// inside the listener (Example_ocspfetch does the same in one line).
func Example_ocspRequest() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
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

	// 1. The client connects, asking for the certificate status.
	conn, err := p.dial(srv)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	// 5. The client validates the stapled response.
	staple, err := ocsp.ParseResponseForCert(conn.ConnectionState().OCSPResponse, p.leaf.Cert, p.ca.Cert)
	if err != nil {
		panic(err)
	}
	fmt.Println("stapled status is good:", staple.Status == ocsp.Good)
	// Output: stapled status is good: true
}

// ocspfetch does steps 3 and 4 properly (verification, caching, refresh)
// in one line.
func Example_ocspfetch() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	fetcher, err := ocspfetch.New(ocspfetch.Options{})
	if err != nil {
		panic(err)
	}
	defer fetcher.Close()

	srv.OnOCSPRequest(fetcher.OCSPRequest)

	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	for range 2 {
		conn, err := p.dial(srv)
		if err != nil {
			panic(err)
		}
		staple, err := ocsp.ParseResponseForCert(conn.ConnectionState().OCSPResponse, p.leaf.Cert, p.ca.Cert)
		conn.Close()
		fmt.Println("verified:", err == nil, "good:", staple != nil && staple.Status == ocsp.Good)
	}
	fmt.Println("responses fetched:", fetcher.Stats().Fetched)
	// Output:
	// verified: true good: true
	// verified: true good: true
	// responses fetched: 1
}

// An error passed to the callback destroys that connection, and the server
// reports it through 'tlsClientError' (Node: socket.destroy(err)).
func Example_callbackError() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	errNoStaple := errors.New("no fresh staple for this certificate")
	reported := make(chan error, 1)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(errNoStaple, nil) })
	srv.OnTLSClientError(func(err error, _ net.Conn) { reported <- err })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}

	_, err = p.dial(srv)
	fmt.Println("client handshake failed:", err != nil)
	fmt.Println("tlsClientError is our error:", errors.Is(<-reported, errNoStaple))
	// Output:
	// client handshake failed: true
	// tlsClientError is our error: true
}

// A listener added after a connection's handshake began (here: inside
// 'connection', which runs after it) applies from the next connection on,
// as in Node.
func Example_lateListener() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.Once(tlsserver.EventConnection, func(...any) {
		srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, []byte("staple")) })
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	for i := 1; i <= 2; i++ {
		conn, err := p.dial(srv)
		if err != nil {
			panic(err)
		}
		fmt.Printf("connection %d stapled %q\n", i, conn.ConnectionState().OCSPResponse)
		conn.Close()
	}
	// Output:
	// connection 1 stapled ""
	// connection 2 stapled "staple"
}

// Established connections can go to net/http, as with Node's https.Server.
func Example_netHTTP() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	fetcher, err := ocspfetch.New(ocspfetch.Options{})
	if err != nil {
		panic(err)
	}
	defer fetcher.Close()
	srv.OnOCSPRequest(fetcher.OCSPRequest)
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello over", r.Proto)
	})}
	go hs.Serve(srv.Listener())
	defer hs.Close()

	roots := x509.NewCertPool()
	roots.AddCert(p.ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get("https://localhost:" + fmt.Sprint(srv.Addr().(*net.TCPAddr).Port))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	fmt.Println("stapled:", len(resp.TLS.OCSPResponse) > 0)
	// Output:
	// hello over HTTP/1.1
	// stapled: true
}

// Go code that prefers channels subscribes to the server's events; the
// callback listeners, and the handshakes, never wait for the channel.
func Example_subscribe() {
	p := newPKI()
	defer p.close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := events.On(ctx, &srv.Emitter, "secure*", 16)
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := p.dial(srv)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	select {
	case ev := <-sub.C:
		tc := ev.Args[0].(*tls.Conn)
		fmt.Println(ev.Name, tls.VersionName(tc.ConnectionState().Version))
	case <-time.After(5 * time.Second):
		fmt.Println("no event")
	}
	// Output: secureConnection TLS 1.3
}
