package tlsserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Item 1: Shutdown is Node's server.close(). A handshake parked on its
// 'OCSPRequest' callback when Shutdown begins finishes, with its staple,
// and is delivered to 'secureConnection' as usual; a client that connects
// after Shutdown began is refused; Shutdown returns once the connection
// has ended. (Shutdown used to cut the handshake: ERR_SERVER_NOT_RUNNING.)
func TestShutdownLetsParkedHandshakesFinish(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	cbs := make(chan tlsserver.OCSPCallback, 1)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cbs <- cb })
	held := make(chan *tls.Conn, 1)
	srv.OnSecureConnection(func(c *tls.Conn) { held <- c })
	addr := srv.Addr().String()
	type dialed struct {
		c   *tls.Conn
		err error
	}
	client := make(chan dialed, 1)
	go func() { c, err := dialAddr(addr, tsClientConfig(p, 0)); client <- dialed{c, err} }()
	cb := <-cbs

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	waitFor(t, func() bool { return srv.Addr() == nil }) // Node's address() is null after close()
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a client connecting after Shutdown began: %v, want ECONNREFUSED", err)
	}

	cb(nil, []byte("staple"))
	r := <-client
	if r.err != nil {
		t.Fatalf("the handshake parked when Shutdown began: %v", r.err)
	}
	defer r.c.Close()
	if got := string(r.c.ConnectionState().OCSPResponse); got != "staple" {
		t.Fatalf("staple %q", got)
	}
	sc := <-held
	go io.WriteString(sc, "served\n")
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(r.c).ReadString('\n'); line != "served\n" {
		t.Fatalf("the connection: %q, %v", line, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a connection open", err)
	default:
	}
	sc.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ce.none(t)
	if n := srv.Connections(); n != 0 {
		t.Fatalf("Connections() = %d after Shutdown", n)
	}
}

// httpsGet GETs path over tr and returns the body, the protocol and
// whether the connection was stapled.
func httpsGet(tr *http.Transport, addr, path string) (string, error) {
	cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := cl.Get("https://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s stapled=%v", body, resp.Proto, len(resp.TLS.OCSPResponse) > 0), nil
}

// keepAliveGet sends one HTTP/1.1 request on c, leaving the connection
// open, and returns the body.
func keepAliveGet(c *tls.Conn, br *bufio.Reader) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a deadlock guard
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// gracefulServer is a server with Options.HTTP whose handler answers "/"
// at once and "/slow" when the test lets it, and whose 'OCSPRequest'
// listener staples a Good OCSP response, parking the handshake (handing
// its callback to the test) when park is set.
type gracefulServer struct {
	srv      *tlsserver.Server
	addr     string
	staple   []byte
	inFlight chan struct{} // a /slow request has reached the handler
	finish   chan struct{} // closed: /slow answers
	park     atomic.Bool
	parked   chan tlsserver.OCSPCallback
	events   recorder
}

func newGracefulServer(t *testing.T, p *tsPKI) *gracefulServer {
	g := &gracefulServer{
		inFlight: make(chan struct{}, 4),
		finish:   make(chan struct{}),
		parked:   make(chan tlsserver.OCSPCallback, 4),
		staple:   p.ca.OCSPResponse(t, p.leaf.Cert, testpki.ResponseOptions{Status: ocsp.Good}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		g.inFlight <- struct{}{}
		<-g.finish
		io.WriteString(w, "slow")
	})
	g.srv = tsServer(t, p, func(o *tlsserver.Options) {
		o.HTTP = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	})
	g.srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		if g.park.CompareAndSwap(true, false) {
			g.parked <- cb
			return
		}
		cb(nil, g.staple)
	})
	g.srv.OnTLSClientError(func(err error, _ net.Conn) { g.events.add("tlsClientError " + tlsserver.Code(err)) })
	g.srv.OnDrop(func(d tlsserver.DropInfo) { g.events.add(fmt.Sprintf("drop %v", d.Err)) })
	g.srv.OnClose(func() { g.events.add("close") })
	g.addr = g.srv.Addr().String()
	return g
}

// Item 2: Options.HTTP and one Shutdown do the whole graceful sequence,
// over real TCP: with a request in flight (HTTP/2), a handshake parked on
// 'OCSPRequest', an idle HTTP/1.1 keep-alive connection, and a client that
// connects after Shutdown began. The late client is refused at once; the
// parked handshake completes and its request is served; then HTTP's
// Shutdown closes the idle connection while the request in flight still
// runs; that request is answered; 'close' comes last, and Shutdown
// returns after it.
func TestShutdownGracefulHTTP(t *testing.T) {
	p := newTSPKI(t)
	g := newGracefulServer(t, p)
	srv := g.srv

	h1 := tsClientConfig(p, 0)
	h1.NextProtos = []string{"http/1.1"}
	idle := tsMustDial(t, srv, h1)
	idleR := bufio.NewReader(idle)
	if body, err := keepAliveGet(idle, idleR); body != "hello" {
		t.Fatalf("keep-alive request: %q, %v", body, err)
	}

	h2 := &http.Transport{TLSClientConfig: tsClientConfig(p, 0), ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	slow := make(chan string, 1)
	go func() {
		got, err := httpsGet(h2, g.addr, "/slow")
		slow <- fmt.Sprintf("%s %v", got, err)
	}()
	<-g.inFlight

	g.park.Store(true)
	late := &http.Transport{TLSClientConfig: tsClientConfig(p, 0), ForceAttemptHTTP2: true}
	defer late.CloseIdleConnections()
	parked := make(chan string, 1)
	go func() {
		got, err := httpsGet(late, g.addr, "/")
		parked <- fmt.Sprintf("%s %v", got, err)
	}()
	cb := <-g.parked

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() {
		err := srv.Shutdown(ctx)
		g.events.add("Shutdown returned")
		shut <- err
	}()
	waitFor(t, func() bool { return srv.Addr() == nil })
	if _, err := net.Dial("tcp", g.addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a client connecting after Shutdown began: %v, want ECONNREFUSED", err)
	}
	if st := srv.Stats(); st.Handshaking != 1 {
		t.Fatalf("Stats().Handshaking = %d during Shutdown, want the parked one", st.Handshaking)
	}

	cb(nil, g.staple)
	if got := <-parked; got != "hello HTTP/2.0 stapled=true <nil>" {
		t.Fatalf("the request of the handshake parked when Shutdown began: %s", got)
	}

	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("the idle keep-alive connection: %v, want it closed (EOF)", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case got := <-slow:
		t.Fatalf("the request in flight ended early: %s", got)
	default:
	}

	close(g.finish)
	if got := <-slow; got != "slow HTTP/2.0 stapled=true <nil>" {
		t.Fatalf("the request in flight: %s", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := g.events.get(); !slices.Equal(got, []string{"close", "Shutdown returned"}) {
		t.Fatalf("events %q, want 'close' then Shutdown's return, nothing else", got)
	}
}

// Item 2, with curl as the clients: a request in flight over HTTP/1.1 and
// one whose handshake is parked on 'OCSPRequest' over HTTP/2 are both
// answered; curl connecting after Shutdown began is refused (exit 7).
func TestShutdownGracefulHTTPCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	p := newTSPKI(t)
	g := newGracefulServer(t, p)
	caPath, _ := p.ca.WritePEM(t.TempDir())
	port := g.srv.Addr().(*net.TCPAddr).Port
	run := func(args ...string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append([]string{"-sS", "--max-time", "20", "--cacert", caPath,
			"--resolve", fmt.Sprintf("localhost:%d:127.0.0.1", port), "-w", " %{http_version} %{http_code}"}, args...)
		out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Errorf("curl: %v", err)
		return "", -1
	}
	url := fmt.Sprintf("https://localhost:%d", port)

	slow := make(chan string, 1)
	go func() { out, code := run("--http1.1", url+"/slow"); slow <- fmt.Sprint(out, " exit ", code) }()
	<-g.inFlight
	g.park.Store(true)
	parked := make(chan string, 1)
	go func() {
		out, code := run("--http2", "--cert-status", url+"/")
		parked <- fmt.Sprint(out, " exit ", code)
	}()
	cb := <-g.parked

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- g.srv.Shutdown(ctx) }()
	waitFor(t, func() bool { return g.srv.Addr() == nil })
	if out, code := run(url + "/"); code != 7 { // CURLE_COULDNT_CONNECT
		t.Fatalf("curl after Shutdown began: exit %d, %q; want 7 (refused)", code, out)
	}
	cb(nil, g.staple) // curl --cert-status verifies it
	if got := <-parked; got != "hello 2 200 exit 0" {
		t.Fatalf("curl --http2 whose handshake was parked: %q", got)
	}
	close(g.finish)
	if got := <-slow; got != "slow 1.1 200 exit 0" {
		t.Fatalf("curl --http1.1 in flight: %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// Item 4: when Shutdown gives up (its context ends), the handshake it cuts
// is reported before 'close', and both before Shutdown returns: no
// listener runs after it. Close too: 'close' after the last report.
func TestShutdownOrderAfterCut(t *testing.T) {
	p := newTSPKI(t)
	for _, how := range []string{"Shutdown", "Close"} {
		t.Run(how, func(t *testing.T) {
			srv := tsServer(t, p, nil)
			var r recorder
			srv.OnTLSClientError(func(err error, _ net.Conn) { r.add("tlsClientError " + tlsserver.Code(err)) })
			closed := make(chan struct{})
			srv.OnClose(func() { r.add("close"); close(closed) })
			parkOne(t, srv, p)
			if how == "Close" {
				srv.Close()
				<-closed
			} else {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("Shutdown: %v", err)
				}
				r.add("Shutdown returned")
			}
			want := []string{"tlsClientError ERR_SERVER_NOT_RUNNING", "close"}
			if how == "Shutdown" {
				want = append(want, "Shutdown returned")
			}
			if got := r.get(); !slices.Equal(got, want) {
				t.Fatalf("order %q, want %q", got, want)
			}
		})
	}
}

// Item 4: a connection counts (Connections, 'close', Shutdown) until the
// listeners of its last event have returned: a 'secureConnection' listener
// that closes the connection and then takes its time holds Shutdown, and
// 'close' comes after it.
func TestShutdownWaitsForRunningListener(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	var r recorder
	closedIt := make(chan struct{})
	release := make(chan struct{})
	srv.OnSecureConnection(func(c *tls.Conn) {
		c.Close()
		close(closedIt)
		<-release
		r.add("secureConnection returned")
	})
	srv.OnClose(func() { r.add("close") })
	tsMustDial(t, srv, tsClientConfig(p, 0))
	<-closedIt
	if n := srv.Connections(); n != 1 {
		t.Fatalf("Connections() = %d while its 'secureConnection' listener runs, want 1", n)
	}
	shut := make(chan error, 1)
	go func() {
		err := srv.Shutdown(context.Background())
		r.add("Shutdown returned")
		shut <- err
	}()
	waitFor(t, func() bool { return srv.Addr() == nil })
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if got := r.get(); !slices.Equal(got, []string{"secureConnection returned", "close", "Shutdown returned"}) {
		t.Fatalf("order %q", got)
	}
}

// A listener that blocks when Shutdown's context ends is not waited for
// (beyond a second's grace): Shutdown returns, and the connection's report
// and 'close' follow when the listener returns.
func TestShutdownDoesNotWaitForBlockedListener(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	blocked := make(chan struct{})
	release := make(chan struct{})
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		close(blocked)
		<-release
	})
	closed := make(chan struct{})
	srv.OnClose(func() { close(closed) })
	go tsDial(srv, tsClientConfig(p, 0))
	<-blocked
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	ce.none(t)
	close(release)
	if err := ce.next(t); !errors.Is(err, tlsserver.ErrClosed) {
		t.Fatalf("tlsClientError %v", err)
	}
	<-closed
}

// Item 6: Stats reports the handshakes in progress and the connections
// waiting for Accept, so that an operator can drain.
func TestStatsHandshakingAndQueued(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	cbs := make(chan tlsserver.OCSPCallback, 2)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cbs <- cb })
	done := make(chan error, 2)
	for range 2 {
		go func() {
			c, err := tsDial(srv, tsClientConfig(p, 0))
			if err == nil {
				defer c.Close()
			}
			done <- err
		}()
	}
	first, second := <-cbs, <-cbs
	if st := srv.Stats(); st.Handshaking != 2 || st.Queued != 0 || st.Connections != 2 {
		t.Fatalf("two parked: %+v", st)
	}
	sub := events.On(t.Context(), &srv.Emitter, tlsserver.EventSecureConnection, events.Buffer(1))
	first(nil, nil)
	<-sub.C
	waitFor(t, func() bool { return srv.Stats().Handshaking == 1 })
	if st := srv.Stats(); st.Queued != 1 || st.Connections != 2 {
		t.Fatalf("one parked, one waiting for Accept: %+v", st)
	}
	second(nil, nil)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { st := srv.Stats(); return st.Handshaking == 0 && st.Queued == 2 })
}

// fdCount is how many file descriptors the process has open.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// Under -race: Close and Shutdown race with accepting, with handshakes
// parked on 'OCSPRequest' (answered later from other goroutines), with
// ServeConn, and with each other. Every Shutdown returns; with a live
// context, nothing is reported after it returns; goroutines (goleak, in
// TestMain) and file descriptors are back at their baseline.
func TestShutdownRaces(t *testing.T) {
	p := newTSPKI(t)
	baseline := fdCount(t)
	for i := range 12 {
		func() {
			srv := tsServer(t, p, func(o *tlsserver.Options) {
				o.HTTP = &http.Server{Handler: servedHandler}
			})
			var after atomic.Bool // Shutdown (with a live context) has returned
			var late atomic.Int32
			mark := func(...any) {
				if after.Load() {
					late.Add(1)
				}
			}
			for _, ev := range []string{tlsserver.EventTLSClientError, tlsserver.EventSecureConnection, tlsserver.EventDrop, tlsserver.EventClose, tlsserver.EventConnection} {
				srv.On(ev, mark)
			}
			var answers sync.WaitGroup
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
				mark()
				answers.Go(func() { cb(nil, []byte("staple")) })
			})
			stop := make(chan struct{})
			var clients sync.WaitGroup
			addr := srv.Addr().String()
			for range 4 {
				clients.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, err := dialAddr(addr, tsClientConfig(p, 0))
						if err != nil {
							return // refused: the server is closing
						}
						c.Close()
					}
				})
			}
			clients.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					a, b := net.Pipe()
					srv.ServeConn(b)
					c := tls.Client(a, tsClientConfig(p, 0))
					c.SetDeadline(time.Now().Add(10 * time.Second))
					c.Handshake()
					a.Close()
				}
			})
			waitFor(t, func() bool { return srv.Stats().FullHandshakes > 2 })
			var ctx context.Context
			var cancel context.CancelFunc
			switch i % 3 {
			case 0:
				ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
			case 1:
				ctx, cancel = context.WithTimeout(context.Background(), time.Duration(i)*time.Millisecond)
			default:
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
			}
			defer cancel()
			var closers sync.WaitGroup
			closers.Go(func() { srv.Shutdown(ctx) })
			if i%2 == 1 {
				closers.Go(func() { srv.Close() })
			}
			if err := srv.Shutdown(ctx); err == nil {
				after.Store(true)
			}
			closers.Wait()
			close(stop)
			clients.Wait()
			answers.Wait()
			waitFor(t, func() bool { return srv.Connections() == 0 })
			if n := late.Load(); n != 0 {
				t.Fatalf("round %d: %d events after Shutdown returned", i, n)
			}
		}()
	}
	// The clients' pipes and sockets are closed; the server's too.
	waitFor(t, func() bool { return fdCount(t) <= baseline })
}
