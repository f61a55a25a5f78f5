package tlsserver_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// handshakeDone waits until the server's side of a handshake is done
// (a channel subscription observes 'secureConnection' without taking the
// connection), then a little past it being handed on.
func handshakeDone(t *testing.T, sub *events.Subscription) {
	t.Helper()
	select {
	case <-sub.C:
	case <-time.After(10 * time.Second):
		t.Fatal("no 'secureConnection'")
	}
	time.Sleep(20 * time.Millisecond)
}

// httpGet sends a GET on c and returns the body.
func httpGet(t *testing.T, c *tls.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a deadlock guard
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the connection was never served: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

var servedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })

// Item 1: the README's order, Listen then go http.Serve(srv.Listener(), h),
// with a handshake that completes between the two calls: that connection
// reaches http.Serve. Also with a 'secureConnection' listener that only
// logs (as cmd/tlsemit-demo has): it does not keep the connection from
// net/http.
func TestREADMEOrderServesEarlyConnection(t *testing.T) {
	p := newTSPKI(t)
	for _, logging := range []bool{false, true} {
		for _, v := range versions {
			t.Run(v.name+map[bool]string{false: "", true: "/logging listener"}[logging], func(t *testing.T) {
				srv := tsServer(t, p, nil) // srv.Listen(…)
				if logging {
					srv.OnSecureConnection(func(c *tls.Conn) { t.Logf("secure connection from %s", c.RemoteAddr()) })
				}
				sub := events.On(t.Context(), &srv.Emitter, tlsserver.EventSecureConnection, events.Buffer(1))
				c := tsMustDial(t, srv, tsClientConfig(p, v.v))
				handshakeDone(t, sub) // the connection is established before Listener is first called

				go http.Serve(srv.Listener(), servedHandler)

				if body := httpGet(t, c); body != "served" {
					t.Fatalf("body %q", body)
				}
			})
		}
	}
}

// Item 1: a connection nobody takes (no Listener called, no
// 'secureConnection' listener) is closed after the bound and reported
// through 'drop'; no goroutine waits for it meanwhile.
func TestUntakenConnectionClosedAndReported(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	drops := make(chan tlsserver.DropInfo, 1)
	srv.OnDrop(func(d tlsserver.DropInfo) { drops <- d })
	sub := events.On(t.Context(), &srv.Emitter, tlsserver.EventSecureConnection, events.Buffer(1))
	before := goleak.IgnoreCurrent()
	c := tsMustDial(t, srv, tsClientConfig(p, tls.VersionTLS13))
	handshakeDone(t, sub)
	if err := goleak.Find(before); err != nil {
		t.Fatalf("a goroutine waits for the untaken connection: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a deadlock guard
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("an untaken connection was not closed: %v", err)
	}
	d := <-drops
	if !errors.Is(d.Err, tlsserver.ErrNotAccepted) || d.RemoteAddr.String() != c.LocalAddr().String() {
		t.Fatalf("drop %+v", d)
	}
	waitFor(t, func() bool { return srv.Connections() == 0 })
}

// Item 1: the backlog is bounded: with Backlog 1, a second connection
// nobody accepts is dropped at once; the first is served once Listener is
// called.
func TestBacklogFull(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.Backlog = 1 })
	drops := make(chan tlsserver.DropInfo, 2)
	srv.OnDrop(func(d tlsserver.DropInfo) { drops <- d })
	sub := events.On(t.Context(), &srv.Emitter, tlsserver.EventSecureConnection, events.Buffer(2))
	first := tsMustDial(t, srv, tsClientConfig(p, 0))
	handshakeDone(t, sub)
	second := tsMustDial(t, srv, tsClientConfig(p, 0))
	if d := <-drops; !errors.Is(d.Err, tlsserver.ErrNotAccepted) || d.RemoteAddr.String() != second.LocalAddr().String() {
		t.Fatalf("drop %+v", d)
	}
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the connection over the backlog was not closed: %v", err)
	}
	go http.Serve(srv.Listener(), servedHandler)
	if body := httpGet(t, first); body != "served" {
		t.Fatalf("body %q", body)
	}
}

// Node's model stays for servers that never call Listener: a connection a
// 'secureConnection' listener received is that listener's, even if it
// waits to use it past the backlog's bound and through Close. Once
// Listener has been called, an unused one is dropped at the bound.
func TestSecureConnectionListenerKeepsConnection(t *testing.T) {
	p := newTSPKI(t)
	for _, withListener := range []bool{false, true} {
		t.Run(map[bool]string{false: "never Listener", true: "Listener called"}[withListener], func(t *testing.T) {
			srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 200 * time.Millisecond })
			if withListener {
				srv.Listener() // and nobody accepts
			}
			drops := make(chan tlsserver.DropInfo, 1)
			srv.OnDrop(func(d tlsserver.DropInfo) { drops <- d })
			held := make(chan *tls.Conn, 1)
			srv.OnSecureConnection(func(c *tls.Conn) { held <- c }) // kept for later
			c := tsMustDial(t, srv, tsClientConfig(p, 0))
			sc := <-held
			time.Sleep(400 * time.Millisecond) // past the bound
			if withListener {
				if d := <-drops; !errors.Is(d.Err, tlsserver.ErrNotAccepted) {
					t.Fatalf("drop %+v", d)
				}
				return
			}
			srv.Close()
			if _, err := io.WriteString(sc, "later\n"); err != nil {
				t.Fatalf("the listener's connection was closed: %v", err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if line != "later\n" {
				t.Fatalf("client read %q, %v", line, err)
			}
			select {
			case d := <-drops:
				t.Fatalf("dropped: %+v", d)
			default:
			}
			sc.Close()
		})
	}
}

// Closing the Listener (as http.Server.Shutdown does) drops the
// connections waiting for it; Accept fails with net.ErrClosed; a new
// Listener takes later connections.
func TestListenerCloseDropsWaiting(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	drops := make(chan tlsserver.DropInfo, 1)
	srv.OnDrop(func(d tlsserver.DropInfo) { drops <- d })
	sub := events.On(t.Context(), &srv.Emitter, tlsserver.EventSecureConnection, events.Buffer(1))
	l := srv.Listener()
	if srv.Listener() != l {
		t.Fatal("Listener returned another listener while open")
	}
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	handshakeDone(t, sub)
	l.Close()
	if d := <-drops; !errors.Is(d.Err, tlsserver.ErrNotAccepted) {
		t.Fatalf("drop %+v", d)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a waiting connection survived the Listener's Close: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	go http.Serve(srv.Listener(), servedHandler)
	if body := httpGet(t, tsMustDial(t, srv, tsClientConfig(p, 0))); body != "served" {
		t.Fatalf("body %q", body)
	}
}

// Several goroutines accepting: every waiting connection reaches one.
func TestConcurrentAccept(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	const n = 16
	l := srv.Listener()
	got := make(chan net.Conn, n)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				got <- c
			}
		})
	}
	for range n {
		go tsDial(srv, tsClientConfig(p, 0))
	}
	for i := range n {
		select {
		case c := <-got:
			c.Close()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d connections accepted", i, n)
		}
	}
	l.Close()
	wg.Wait()
}
