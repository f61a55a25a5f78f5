package tlsserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Item 2: Close racing connections that are just starting, with an
// SNICallback (run with -race).
func TestCloseRacesHandshakeStart(t *testing.T) {
	p := newTSPKI(t)
	for range 30 {
		srv, err := tlsserver.New(tlsserver.Options{
			Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
			SNICallback:  func(context.Context, string) (*tls.Certificate, error) { return nil, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		var clients []net.Conn
		started := make(chan struct{})
		for range 4 {
			a, b := net.Pipe()
			clients = append(clients, a)
			go func() { srv.ServeConn(b); started <- struct{}{} }()
		}
		srv.Close()
		for range 4 {
			<-started
		}
		for _, c := range clients {
			c.Close()
		}
		waitFor(t, func() bool { return srv.Connections() == 0 })
	}
}

// Item 8: ending Listen's context stops that listener only, as closing a
// net.Listener does: established connections stay, Addr is nil while
// nothing listens (Node's address() is null), Listen works again and emits
// 'listening' again. Close is final, as http.Server's: Listen and Serve
// then return ErrClosed, and Addr stays nil.
func TestListenContextStopsOnlyThatListener(t *testing.T) {
	p := newTSPKI(t)
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var listening atomic.Int32
	srv.OnListening(func() { listening.Add(1) })
	closed := make(chan struct{})
	srv.OnClose(func() { close(closed) })
	held := make(chan *tls.Conn, 2)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	if srv.Addr() != nil {
		t.Fatal("Addr before Listen")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := tsMustDial(t, srv, tsClientConfig(p, 0))
	sc := <-held
	old := srv.Addr().String()
	cancel()
	waitFor(t, func() bool { return srv.Addr() == nil })
	if _, err := net.Dial("tcp", old); err == nil {
		t.Fatal("still accepting after the context ended")
	}
	// The established connection is untouched.
	go io.WriteString(sc, "still here\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "still here\n" {
		t.Fatalf("established connection: %q, %v", line, err)
	}
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("Listen after the first listener's context ended: %v", err)
	}
	tsMustDial(t, srv, tsClientConfig(p, 0))
	(<-held).Close()
	if n := listening.Load(); n != 2 {
		t.Fatalf("'listening' emitted %d times", n)
	}
	select {
	case <-closed:
		t.Fatal("'close' without Close")
	default:
	}
	srv.Close()
	if srv.Addr() != nil {
		t.Fatalf("Addr() = %v after Close", srv.Addr())
	}
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); !errors.Is(err, tlsserver.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
	sc.Close()
	<-closed
}

// Node's server.closeAllConnections() is Shutdown with a context that has
// already ended: every connection is closed at once, and Shutdown returns
// once they are gone.
func TestShutdownEndedContextClosesAll(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	held := make(chan *tls.Conn, 2)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	c1 := tsMustDial(t, srv, tsClientConfig(p, 0))
	c2 := tsMustDial(t, srv, tsClientConfig(p, 0))
	<-held
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*tls.Conn{c1, c2} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("connection left open: %v", err)
		}
	}
	if srv.Connections() != 0 {
		t.Fatal("connections left")
	}
}

// Item 5: the Go form of Node's await once(server, 'listening'): the
// return of Listen is the event, emitted before Listen returns, so
// events.Once registered before Listen sees it, and one registered after
// never does (it waits for the next Listen; here, until its context
// ends).
func TestListeningIsListensReturn(t *testing.T) {
	p := newTSPKI(t)
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	before := events.Once(t.Context(), &srv.Emitter, tlsserver.EventListening)
	if err := srv.Listen(t.Context(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-before:
		if r.Err != nil {
			t.Fatalf("Once before Listen: %v", r.Err)
		}
	default:
		t.Fatal("'listening' not emitted by the time Listen returned")
	}
	ctx, cancel := context.WithCancel(t.Context())
	after := events.Once(ctx, &srv.Emitter, tlsserver.EventListening)
	cancel()
	if r := <-after; !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("Once after Listen: %+v, want only its context's end", r)
	}
}
