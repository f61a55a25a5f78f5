package ocspfetch

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testevents"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newClock is an Options.Now that moves only when told.
func newClock() *testclock.Clock { return testclock.New() }

// recorder collects events.
type recorder struct {
	*testevents.Recorder[Event, EventKind]
}

func newRecorder() *recorder {
	return &recorder{testevents.New(func(e Event) EventKind { return e.Kind })}
}

func (r *recorder) kinds() []EventKind { return r.Kinds() }

// find returns the last event of kind, or false.
func (r *recorder) find(kind EventKind) (Event, bool) {
	return r.Last(func(e Event) bool { return e.Kind == kind })
}

// newFetcher builds a Fetcher without the background loop (tests call
// runDue themselves), closed at the end of the test, its events recorded.
func newFetcher(t testing.TB, o Options) (*Fetcher, *recorder) {
	t.Helper()
	rec := newRecorder()
	if o.OnEvent == nil {
		o.OnEvent = rec.OnEvent
	}
	f, err := newFetcherWith(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rec
}

// dirFetcher is newFetcher with o and a DirStore in dir: call it again
// for a restart.
func dirFetcher(t testing.TB, dir string, o Options) (*Fetcher, *recorder) {
	t.Helper()
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Store = store
	return newFetcher(t, o)
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

// refreshNow lets the fetches in progress finish (so that none is joined
// instead of started), runs what is due at now and waits for the fetches
// it started; it returns how many.
func refreshNow(t testing.TB, f *Fetcher, now time.Time) int {
	t.Helper()
	settle(t, f)
	flights, _ := f.runDue(now)
	for _, fl := range flights {
		select {
		case <-fl.done:
		case <-time.After(30 * time.Second):
			t.Fatal("refresh never finished")
		}
	}
	return len(flights)
}

// newBufLogger is a Logger writing to w under mu.
func newBufLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(testenv.LockedWriter(w, mu), nil))
}

// settle waits until no fetch of f is in progress.
func settle(t testing.TB, f *Fetcher) {
	t.Helper()
	testenv.WaitFor(t, func() bool { return f.fetches.Running() == 0 })
}
