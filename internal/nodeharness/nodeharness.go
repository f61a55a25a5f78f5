// Package nodeharness finds and runs the node binary for tests that compare
// tlsemit with Node.js.
//
// Node is expected on every development machine. Without it a test is
// skipped, unless the environment has CI=true, where a missing node fails
// the test: CI must not pass by skipping the comparison.
package nodeharness

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/tlsemit/tlsemit/internal/testenv"
)

// Require returns the path of node, skipping t when it is missing, or
// failing t when CI=true.
func Require(t testing.TB) string {
	t.Helper()
	return testenv.RequireTool(t, "node")
}

// Run runs node with script and args and returns its standard output. A
// non-zero exit fails t with the script's standard error.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	node := Require(t)
	cmd := exec.Command(node, append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nodeharness: node %s: %v\nstderr:\n%s", script, err, stderr.Bytes())
	}
	return stdout.Bytes()
}
