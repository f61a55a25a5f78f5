package userhook

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errStore = errors.New("pkg: store failed")
	errPanic = errors.New("pkg: user code panicked")
)

// newGuard returns a Guard whose Store calls are counted in running,
// each end sent on ended.
func newGuard(log *slog.Logger) (g *Guard, running *atomic.Int64, ended chan struct{}) {
	running, ended = new(atomic.Int64), make(chan struct{}, 10)
	return &Guard{Name: "pkg", Logger: log, Panics: new(atomic.Int64), StoreTimeout: 50 * time.Millisecond,
		ErrStore: errStore, ErrPanic: errPanic, Answers: []error{fs.ErrNotExist},
		Begin: func() { running.Add(1) }, End: func() { running.Add(-1); ended <- struct{}{} }}, running, ended
}

// TestStoreCall: a result, an answer and a failure, a panic, and a call
// that does not return, each as the package's errors say; the abandoned
// call is still tracked until it returns.
func TestStoreCall(t *testing.T) {
	g, running, ended := newGuard(nil)
	ctx := context.Background()
	if v, err := StoreCall(g, ctx, "Load", func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := StoreCall(g, ctx, "Load", func(context.Context) (int, error) { return 0, fs.ErrNotExist }); err != fs.ErrNotExist {
		t.Fatalf("an answer was changed: %v", err)
	}
	broken := errors.New("disk on fire")
	if _, err := StoreCall(g, ctx, "Store", func(context.Context) (int, error) { return 1, broken }); !errors.Is(err, errStore) || !errors.Is(err, broken) || err.Error() != "pkg: store failed: Store: disk on fire" {
		t.Fatalf("failure: %v", err)
	}
	if _, err := StoreCall(g, ctx, "Load", func(context.Context) (int, error) { panic("boom") }); !errors.Is(err, errPanic) || err.Error() != "pkg: user code panicked: Store Load: boom" || g.Panics.Load() != 1 {
		t.Fatalf("panic: %v, %d counted", err, g.Panics.Load())
	}
	release := make(chan struct{})
	_, err := StoreCall(g, ctx, "Delete", func(context.Context) (int, error) { <-release; return 0, nil })
	if !errors.Is(err, errStore) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Delete did not return within 50ms") {
		t.Fatalf("hang: %v", err)
	}
	for range 4 {
		<-ended // the calls that returned
	}
	if n := running.Load(); n != 1 {
		t.Fatalf("%d calls tracked, want the abandoned one", n)
	}
	close(release)
	<-ended
}

// TestContain: a panic is counted and logged; the Logger's own panic is
// counted, not logged again.
func TestContain(t *testing.T) {
	var buf bytes.Buffer
	g, _, _ := newGuard(slog.New(slog.NewTextHandler(&buf, nil)))
	g.Contain("OnEvent", func() { panic("boom") })
	if g.Panics.Load() != 1 || !strings.Contains(buf.String(), `msg="pkg: OnEvent panicked" panic=boom`) {
		t.Fatalf("%d panics, logged %q", g.Panics.Load(), buf.String())
	}
	buf.Reset()
	g.Contain("Logger", func() { panic("boom") })
	if g.Panics.Load() != 2 || buf.Len() != 0 {
		t.Fatalf("%d panics, logged %q", g.Panics.Load(), buf.String())
	}
}
