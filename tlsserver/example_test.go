package tlsserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// exampleEnv is a throwaway PKI for the examples (they have no *testing.T).
type exampleEnv struct {
	pki *tsPKI
	srv *tlsserver.Server
}

func newExample() *exampleEnv {
	ca := testpki.NewCA(testpki.Exit, "example root")
	p := &tsPKI{ca: ca, leaf: ca.Issue(testpki.Exit, testpki.LeafOptions{})}
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{p.leaf.TLSCertificate(true)},
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	return &exampleEnv{pki: p, srv: srv}
}

func (e *exampleEnv) listen() {
	if err := e.srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
}

func (e *exampleEnv) dial() (*tls.Conn, error) { return tsDial(e.srv, tsClientConfig(e.pki, 0)) }

func (e *exampleEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
}

func ExampleServer_OnOCSPRequest() {
	env := newExample()
	defer env.close()
	staple := []byte("a DER OCSP response, e.g. from ocspfetch")
	env.srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		// cert and issuer are DER; answer now or later, from any goroutine.
		cb(nil, staple)
	})
	env.listen()
	c, err := env.dial()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Printf("stapled: %s\n", c.ConnectionState().OCSPResponse)
	// Output: stapled: a DER OCSP response, e.g. from ocspfetch
}

func ExampleServer_OnSecureConnection() {
	env := newExample()
	defer env.close()
	env.srv.OnSecureConnection(func(c *tls.Conn) {
		defer c.Close()
		io.WriteString(c, "hello over "+tls.VersionName(c.ConnectionState().Version)+"\n")
	})
	env.listen()
	c, err := env.dial()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	line, _ := io.ReadAll(c)
	fmt.Print(string(line))
	// Output: hello over TLS 1.3
}

func ExampleServer_OnTLSClientError() {
	env := newExample()
	defer env.close()
	errs := make(chan error, 1)
	env.srv.OnTLSClientError(func(err error, conn net.Conn) { errs <- err })
	env.srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		cb(nil, nil)
		cb(nil, nil) // a second call: ERR_MULTIPLE_CALLBACK
	})
	env.listen()
	env.dial()
	err := <-errs
	fmt.Println(tlsserver.Code(err))
	// Output: ERR_MULTIPLE_CALLBACK
}

func ExampleServer_OnConnection() {
	env := newExample()
	defer env.close()
	remote := make(chan string, 1)
	env.srv.OnConnection(func(raw net.Conn) {
		// Before TLS: the raw connection.
		remote <- raw.RemoteAddr().Network()
	})
	env.listen()
	c, err := env.dial()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(<-remote)
	// Output: tcp
}

func ExampleServer_OnKeylog() {
	env := newExample()
	defer env.close()
	var mu sync.Mutex
	labels := map[string]bool{}
	env.srv.OnKeylog(func(line []byte, conn net.Conn) {
		var label string
		fmt.Sscan(string(line), &label)
		mu.Lock()
		labels[label] = true
		mu.Unlock()
	})
	done := make(chan struct{})
	env.srv.OnSecureConnection(func(c *tls.Conn) { c.Close(); close(done) })
	env.listen()
	c, err := env.dial()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(labels["CLIENT_TRAFFIC_SECRET_0"], labels["SERVER_TRAFFIC_SECRET_0"])
	// Output: true true
}

func ExampleServer_OnNewSession() {
	env := newExample()
	defer env.close()
	var mu sync.Mutex
	store := map[string][]byte{} // Node's classic: Redis
	env.srv.OnNewSession(func(id, data []byte, done func()) {
		mu.Lock()
		store[string(id)] = data
		mu.Unlock()
		done()
	})
	env.srv.OnResumeSession(func(id []byte, cb func(err error, data []byte)) {
		mu.Lock()
		defer mu.Unlock()
		cb(nil, store[string(id)]) // nil data: a full handshake
	})
	env.listen()
	cfg := tsClientConfig(env.pki, tls.VersionTLS12)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	for range 2 {
		c, err := tsDial(env.srv, cfg)
		if err != nil {
			panic(err)
		}
		fmt.Println("resumed:", c.ConnectionState().DidResume)
		c.Close()
	}
	// Output:
	// resumed: false
	// resumed: true
}

func ExampleServer_Listener() {
	env := newExample()
	defer env.close()
	env.srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, []byte("staple")) })
	env.listen()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", r.Proto)
	})}
	go hs.Serve(env.srv.Listener())
	defer hs.Close()

	tr := &http.Transport{TLSClientConfig: tsClientConfig(env.pki, 0), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + env.srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body), string(resp.TLS.OCSPResponse))
	// Output: HTTP/1.1 staple
}
