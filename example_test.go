package tlsemit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// The examples' certificates, CA and OCSP responder come from newPKI,
// shown in Example_ocspRequest.

// ocspfetch does steps 3 and 4 properly (verification, caching, refresh)
// in one line.
func Example_ocspfetch() {
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
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
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
		if err != nil {
			panic(err)
		}
		staple, err := ocsp.ParseResponseForCert(conn.ConnectionState().OCSPResponse, pki.Cert.Leaf, pki.CA)
		conn.Close()
		fmt.Println("verified:", err == nil, "good:", staple != nil && staple.Status == ocsp.Good)
	}
	fmt.Println("responses fetched:", fetcher.Stats().Fetched)
	// Output:
	// verified: true good: true
	// verified: true good: true
	// responses fetched: 1
}

// The README's quick start: Node's https.createServer(options, handler)
// with its 'OCSPRequest' listener done by ocspfetch, serving HTTP/2 and
// HTTP/1.1 until SIGTERM, then one Shutdown, Node's server.close():
// handshakes under way and requests in flight finish, idle keep-alive
// connections close, and Shutdown returns after 'close'.
func Example_quickStart() {
	pki := newPKI()
	defer pki.Close()
	cert := pki.Cert
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello over", r.Proto)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},                                             // leaf + issuer chain
		HTTP:         &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, // HTTP/2 and HTTP/1.1
	})
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

	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	go deploy(srv, pki) // a client, then the SIGTERM of the next deploy

	<-ctx.Done()
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		panic(err)
	}
	fmt.Println("shut down")
	// Output:
	// hello over HTTP/2.0
	// stapled: true
	// shut down
}

// deploy plays the world around Example_quickStart: a client's request,
// then the SIGTERM a deploy sends.
func deploy(srv *tlsserver.Server, pki *examplePKI) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Roots}, ForceAttemptHTTP2: true}}
	resp, err := client.Get(fmt.Sprintf("https://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
	if err != nil {
		fmt.Println(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
		fmt.Println("stapled:", len(resp.TLS.OCSPResponse) > 0)
	}
	client.CloseIdleConnections()
	self, _ := os.FindProcess(os.Getpid())
	self.Signal(syscall.SIGTERM)
}

// An error passed to the callback destroys that connection, and the server
// reports it through 'tlsClientError' (Node: socket.destroy(err)).
func Example_callbackError() {
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
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

	_, err = tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
	fmt.Println("client handshake failed:", err != nil)
	fmt.Println("tlsClientError is our error:", errors.Is(<-reported, errNoStaple))
	// Output:
	// client handshake failed: true
	// tlsClientError is our error: true
}

// A listener added after a connection's handshake began (here: inside
// 'connection', which runs after it) applies from the next connection on.
// (Node, which enables the event per socket and then calls every listener
// present at the ClientHello, would call it for the first connection too
// if another listener had been there: see docs/porting-from-node.md.)
func Example_lateListener() {
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
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
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
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

// Established connections go to net/http, as with Node's https.Server, in
// the README's order: Listen, then Serve on srv.Listener().
func Example_netHTTP() {
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
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

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Roots}}}
	resp, err := client.Get(fmt.Sprintf("https://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
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
	pki := newPKI()
	defer pki.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{pki.Cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := events.On(ctx, &srv.Emitter, "secure*")
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"})
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
