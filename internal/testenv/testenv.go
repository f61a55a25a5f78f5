// Package testenv holds the project's one rule for tests that need a real
// peer (openssl, curl, node): without the tool a test is skipped, unless
// the environment has CI=true, where the missing tool is a failure, so
// that CI cannot pass by skipping.
package testenv

import (
	"os"
	"os/exec"
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
