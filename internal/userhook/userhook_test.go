package userhook

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// TestContain: a panic is counted and logged; the Logger's own panic is
// counted, not logged again.
func TestContain(t *testing.T) {
	var buf bytes.Buffer
	g := &Guard{Name: "pkg", Logger: slog.New(slog.NewTextHandler(&buf, nil)), Panics: new(atomic.Int64)}
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
