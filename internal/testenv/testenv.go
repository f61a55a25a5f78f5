// Package testenv holds the project's one rule for tests that need a real
// peer (openssl, curl, node): without the tool a test is skipped, unless
// the environment has CI=true, where the missing tool is a failure, so
// that CI cannot pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
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
