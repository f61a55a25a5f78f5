package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// tracer prints one timestamped line per thing that happens, from any
// goroutine. It colours the source column only when writing to a terminal.
type tracer struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	colour bool
}

func newTracer(w io.Writer) *tracer {
	t := &tracer{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" {
			t.colour = true
		}
	}
	return t
}

var colours = map[string]string{
	"server":    "\x1b[36m", // cyan
	"ocspfetch": "\x1b[35m", // magenta
	"responder": "\x1b[33m", // yellow
	"crlfetch":  "\x1b[34m", // blue
	"crl host":  "\x1b[33m", // yellow
	"client":    "\x1b[32m", // green
	"demo":      "\x1b[1m",  // bold
	"redis":     "\x1b[31m", // red
	"member A":  "\x1b[36m", // cyan
	"member B":  "\x1b[34m", // blue
	"member C":  "\x1b[35m", // magenta
}

// log prints a line: elapsed time, source, message.
func (t *tracer) log(source, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	elapsed := time.Since(t.start).Seconds()
	src := fmt.Sprintf("%-9s", source)
	if c, ok := colours[source]; ok && t.colour {
		src = c + src + "\x1b[0m"
	}
	fmt.Fprintf(t.w, "%+8.3fs  %s  %s\n", elapsed, src, fmt.Sprintf(format, args...))
}

// step prints a heading for the next part of the tour.
func (t *tracer) step(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	line := "== " + fmt.Sprintf(format, args...)
	if t.colour {
		line = "\x1b[1m" + line + "\x1b[0m"
	}
	fmt.Fprintf(t.w, "\n%s\n", line)
}
