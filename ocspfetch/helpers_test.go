package ocspfetch

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an Options.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) OnEvent(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []EventKind
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return k
}

// find returns the last event of kind, or false.
func (r *recorder) find(kind EventKind) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Kind == kind {
			return r.events[i], true
		}
	}
	return Event{}, false
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newFetcher builds a Fetcher that is closed at the end of the test, with a
// quiet logger and events recorded.
func newFetcher(t testing.TB, o Options) (*Fetcher, *recorder) {
	t.Helper()
	rec := &recorder{}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.OnEvent == nil {
		o.OnEvent = rec.OnEvent
	}
	o.manualRefresh = true // tests call refreshDue themselves
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rec
}

// result is one OCSPRequest callback.
type result struct {
	err     error
	der     []byte
	elapsed time.Duration
}

// request calls OCSPRequest and waits for its callback (failing the test if
// it never comes or comes twice).
func request(t testing.TB, f *Fetcher, cert, issuer []byte) result {
	t.Helper()
	ch := make(chan result, 2)
	start := time.Now()
	f.OCSPRequest(cert, issuer, func(err error, der []byte) {
		ch <- result{err: err, der: der, elapsed: time.Since(start)}
	})
	select {
	case r := <-ch:
		select {
		case <-ch:
			t.Fatal("callback called twice")
		case <-time.After(10 * time.Millisecond):
		}
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("callback never called")
		return result{}
	}
}

// settle waits for the refreshes that refreshDue starts.
func refreshNow(t testing.TB, f *Fetcher, now time.Time) int {
	t.Helper()
	chans, _ := f.refreshDue(now)
	for _, ch := range chans {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("refresh never finished")
		}
	}
	return len(chans)
}

func newBufLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{w, mu}, nil))
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
