package nodeharness_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/internal/nodeharness"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "echo.js")
	if err := os.WriteFile(script, []byte(`console.log(process.argv[2]+process.argv[3])`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := nodeharness.Run(t, script, "hello ", "world")
	if got := strings.TrimSpace(string(out)); got != "hello world" {
		t.Fatalf("got %q, want %q", got, "hello world")
	}
}
