// Package testenv holds the project's one rule for tests that need a real
// peer (openssl, curl, node): without the tool a test is skipped, unless
// the environment has CI=true, where the missing tool is a failure, so
// that CI cannot pass by skipping. WaitFor and LockedWriter serve tests
// of every kind.
package testenv

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// RequireTool returns the path of the named program, skipping t when it is
// missing, or failing t when CI is true.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if CI() {
		t.Fatalf("%s is required with CI=true but was not found in PATH (.ci/run installs it): %v", name, err)
		return ""
	}
	t.Skipf("%s not found in PATH (%v); with CI=true this is a failure", name, err)
	return ""
}

// WaitFor polls cond until it holds, failing t after 10 s: a deadlock
// guard for what a test waits on, never a timed assertion.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LockedWriter returns a writer that writes to w holding mu, so that a
// test can read, holding mu, what a logger or a process wrote to w while
// it may still be writing. Two LockedWriters of the same w and mu are ==
// (exec.Cmd then copies Stdout and Stderr on one goroutine).
func LockedWriter(w io.Writer, mu *sync.Mutex) io.Writer { return lockedWriter{w, mu} }

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
