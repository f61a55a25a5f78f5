package ocspfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// panicStore panics in every call.
type panicStore struct{}

func (panicStore) Load(context.Context, string) ([]byte, error) { panic("store Load exploded") }
func (panicStore) Store(context.Context, string, []byte, time.Time) error {
	panic("store Store exploded")
}
func (panicStore) Delete(context.Context, string) error { panic("store Delete exploded") }

// panicTransport panics in RoundTrip.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport exploded") }

const panicChildEnv = "OCSPFETCH_PANIC_CHILD"

// TestHookPanicContained runs, in a child process (the test binary run
// again), a Fetcher whose OnEvent, Store and HTTP transport panic. The
// child must survive: the panics are recovered and reported, a panicking
// hook or Store costs nothing but itself (the staple is still fetched), a
// panicking transport costs only that fetch.
func TestHookPanicContained(t *testing.T) {
	if os.Getenv(panicChildEnv) == "1" {
		panicChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHookPanicContained$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), panicChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child process died: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("child: survived")) {
		t.Fatalf("the child did not get through:\n%s", out)
	}
}

func panicChild(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	var panics atomic.Int64
	f, err := New(Options{Now: clk.Now, Store: panicStore{}, HandshakeBudget: 10 * time.Second,
		OnEvent: func(Event) { panics.Add(1); panic("OnEvent exploded") }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := request(t, f, s.leaf.DER, s.ca.DER)
	if res.der == nil {
		t.Fatal("a panicking OnEvent and Store cost the staple")
	}
	if panics.Load() == 0 {
		t.Fatal("OnEvent never called")
	}
	if _, err := f.Staple(context.Background(), s.leaf.DER, s.ca.DER); err != nil {
		t.Fatalf("Staple: %v", err)
	}
	settle(t, f)
	if p := f.Stats().Panics; p < 3 { // Store.Load, Store.Store, OnEvent (at least once)
		t.Fatalf("Stats.Panics %d", p)
	}

	rec := newRecorder()
	g, err := New(Options{Now: clk.Now, HTTPClient: &http.Client{Transport: panicTransport{}}, OnEvent: rec.OnEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if res := request(t, g, s.leaf.DER, s.ca.DER); res.der != nil {
		t.Fatal("stapled through a panicking transport")
	}
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrPanic) {
		t.Fatalf("panicking transport not reported: %v", rec.kinds())
	}
	fmt.Println("child: survived")
}

// TestCloseClosesIdleConnections: after Close the responder sees the
// Fetcher's keep-alive connection closed; none is left open for the idle
// timeout.
func TestCloseClosesIdleConnections(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	var leaf *testpki.Leaf
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeOCSP(w, ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{}))
	}))
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch st {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()
	leaf = ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL}})
	f, _ := newFetcher(t, Options{})
	if res := request(t, f, leaf.DER, ca.DER); res.der == nil {
		t.Fatal("no staple")
	}
	f.Close()
	testenv.WaitFor(t, func() bool { // well before the idle timeout (30 s)
		mu.Lock()
		defer mu.Unlock()
		return len(open) == 0
	})
}

// TestUnfetchableEntriesSwept: certificates without a responder and bytes
// that do not parse are forgotten when no handshake asked about them for
// a day, like any other; one still in use is kept.
func TestUnfetchableEntriesSwept(t *testing.T) {
	clk := newClock()
	f, _ := newFetcher(t, Options{Now: clk.Now})
	ca := testpki.NewCA(t, "ca")
	noResponder := ca.Issue(t, testpki.LeafOptions{})
	inUse := ca.Issue(t, testpki.LeafOptions{})
	for _, c := range [][]byte{noResponder.DER, []byte("not a certificate"), inUse.DER} {
		f.OCSPRequest(c, ca.DER, func(error, []byte) {})
	}
	if n := f.Stats().Certificates; n != 3 {
		t.Fatalf("%d certificates tracked, want 3", n)
	}
	start := clk.Now()
	for i := 0; i < 100 && f.Stats().Certificates > 1; i++ {
		clk.Advance(time.Hour)
		f.OCSPRequest(inUse.DER, ca.DER, func(error, []byte) {})
		refreshNow(t, f, clk.Now())
	}
	if n := f.Stats().Certificates; n != 1 {
		t.Fatalf("%d certificates tracked after %v, want 1 (the one in use)", n, clk.Now().Sub(start))
	}
	if clk.Now().Sub(start) < idleTimeout {
		t.Fatalf("forgotten after %v, before the idle timeout", clk.Now().Sub(start))
	}
}

// TestNilLoggerIsSilent: without a Logger the Fetcher writes nothing, not
// even to slog.Default; what matters still arrives as events.
func TestNilLoggerIsSilent(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(newBufLogger(&buf, &mu))
	defer slog.SetDefault(prev)
	ca := testpki.NewCA(t, "ca")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer srv.Close()
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL}, MustStaple: true})
	rec := newRecorder()
	f, err := New(Options{OnEvent: rec.OnEvent})
	if err != nil {
		t.Fatal(err)
	}
	request(t, f, leaf.DER, ca.DER)
	f.Close()
	if _, ok := rec.find(EventMustStapleMissing); !ok {
		t.Fatalf("no must-staple-missing event: %v", rec.kinds())
	}
	mu.Lock()
	defer mu.Unlock()
	if buf.Len() != 0 {
		t.Fatalf("a Fetcher without a Logger logged:\n%s", buf.String())
	}
}

// TestRedirectsStayOnOrigin: a responder's redirect is followed only to
// the same scheme and host; one to another host is refused before any
// byte reaches it, with the default client and with a client of the
// user's that would follow anything.
func TestRedirectsStayOnOrigin(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	var elsewhere atomic.Int64
	good := s.good(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		good(w, r)
	}))
	defer other.Close()
	s.set(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	})
	permissive := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	for _, c := range []*http.Client{nil, permissive} {
		f, rec := newFetcher(t, Options{Now: clk.Now, HTTPClient: c})
		if res := request(t, f, s.leaf.DER, s.ca.DER); res.der != nil {
			t.Fatal("stapled an answer from another host")
		}
		if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrRefusedAddress) {
			t.Fatalf("cross-host redirect: %v", rec.kinds())
		}
	}
	if elsewhere.Load() != 0 {
		t.Fatal("a request reached the other host")
	}
	s.set(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/moved/") {
			good(w, r)
			return
		}
		http.Redirect(w, r, "/moved"+r.URL.Path, http.StatusMovedPermanently)
	})
	f, rec := newFetcher(t, Options{Now: clk.Now})
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatalf("same-origin redirect not followed: %v", rec.kinds())
	}
}
