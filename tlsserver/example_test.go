package tlsserver_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// The examples make their certificates with throwawayPKI, shown in
// Example_httpsCreateServer.

func ExampleServer_OnOCSPRequest() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	staple := []byte("a DER OCSP response, e.g. from ocspfetch")
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		// cert and issuer are DER; answer now or later, from any goroutine.
		cb(nil, staple)
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Printf("stapled: %s\n", conn.ConnectionState().OCSPResponse)
	// Output: stapled: a DER OCSP response, e.g. from ocspfetch
}

// The TLS socket's properties in Node, and their Go forms on the
// *tls.Conn's ConnectionState.
func ExampleServer_OnSecureConnection() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{cert},
		Config:       &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.OnSecureConnection(func(c *tls.Conn) {
		defer c.Close() // using the connection makes it this listener's
		st := c.ConnectionState()
		fmt.Fprintf(c, "servername: %s\n", st.ServerName)                      // socket.servername
		fmt.Fprintf(c, "getProtocol(): %s\n", tls.VersionName(st.Version))     // 'TLSv1.3' in Node
		fmt.Fprintf(c, "isSessionReused(): %v\n", st.DidResume)                // socket.isSessionReused()
		fmt.Fprintf(c, "alpnProtocol: %q\n", st.NegotiatedProtocol)            // false in Node when none
		fmt.Fprintf(c, "getPeerCertificate(): %d\n", len(st.PeerCertificates)) // the client's, if it sent one
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	lines, _ := io.ReadAll(conn)
	fmt.Print(string(lines))
	// Output:
	// servername: localhost
	// getProtocol(): TLS 1.3
	// isSessionReused(): false
	// alpnProtocol: "h2"
	// getPeerCertificate(): 0
}

func ExampleServer_OnTLSClientError() {
	cert, _ := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	errs := make(chan error, 1)
	srv.OnTLSClientError(func(err error, conn net.Conn) { errs <- err })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	// Plain HTTP on the TLS port.
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	fmt.Println(tlsserver.Code(<-errs)) // Node's err.code
	// Output: ERR_SSL_HTTP_REQUEST
}

func ExampleServer_OnConnection() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	network := make(chan string, 1)
	srv.OnConnection(func(raw net.Conn) {
		// Before TLS: the raw connection (set deadlines, keep-alive… here).
		network <- raw.RemoteAddr().Network()
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Println(<-network)
	// Output: tcp
}

// crypto/tls writes the key-log lines of TLS 1.3 and of full TLS 1.2
// handshakes; OpenSSL (so Node) also writes EXPORTER_SECRET, and a
// CLIENT_RANDOM line for resumed TLS 1.2 handshakes.
func ExampleServer_OnKeylog() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var labels []string
	srv.OnKeylog(func(line []byte, conn net.Conn) {
		mu.Lock()
		labels = append(labels, strings.Fields(string(line))[0])
		mu.Unlock()
	})
	done := make(chan struct{})
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close(); close(done) })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(strings.Join(labels, "\n"))
	// Output:
	// CLIENT_HANDSHAKE_TRAFFIC_SECRET
	// SERVER_HANDSHAKE_TRAFFIC_SECRET
	// CLIENT_TRAFFIC_SECRET_0
	// SERVER_TRAFFIC_SECRET_0
}

// Node's external session store. In TLS 1.2 crypto/tls issues a ticket on
// every handshake, full or resumed, so 'newSession' comes each time (Node
// calls it only for clients resuming by session ID, which crypto/tls does
// not do).
func ExampleServer_OnNewSession() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	store := map[string][]byte{} // Node's classic: Redis
	srv.OnNewSession(func(id, data []byte, done func()) {
		mu.Lock()
		store[string(id)] = data
		mu.Unlock()
		fmt.Println("newSession")
		done()
	})
	srv.OnResumeSession(func(id []byte, cb func(err error, data []byte)) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println("resumeSession")
		cb(nil, store[string(id)]) // nil data: a full handshake
	})
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	for range 2 {
		conn, err := tls.Dial("tcp", srv.Addr().String(), cfg)
		if err != nil {
			panic(err)
		}
		fmt.Println("resumed:", conn.ConnectionState().DidResume)
		conn.Close()
	}
	// Output:
	// newSession
	// resumed: false
	// resumeSession
	// newSession
	// resumed: true
}

// Listener hands the established connections to net/http, including
// those that completed before Listener was called.
func ExampleServer_Listener() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, []byte("staple")) })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s", r.Proto)
	})}
	go hs.Serve(srv.Listener())
	defer hs.Close()

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(fmt.Sprintf("https://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body), string(resp.TLS.OCSPResponse))
	// Output: HTTP/1.1 staple
}

// Node's setTicketKeys, with a ring: the first key encrypts new tickets,
// all of them decrypt, so a rotation keeps the tickets already out.
func ExampleServer_SetTicketKeys() {
	cert, roots := throwawayPKI()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		panic(err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	dial := func() bool {
		conn, err := tls.Dial("tcp", srv.Addr().String(), cfg)
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		return conn.ConnectionState().DidResume
	}
	dial() // a ticket under the current key
	previous := srv.TicketKeys()
	next := make([]byte, 48)
	rand.Read(next)
	srv.SetTicketKeys(next, previous) // rotate, keeping the previous key for decryption
	fmt.Println("resumed after the rotation:", dial())
	// Output: resumed after the rotation: true
}
