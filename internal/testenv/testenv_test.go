package testenv

import (
	"testing"
)

// fakeT records what RequireTool did instead of ending the test.
type fakeT struct {
	testing.TB
	fatal, skip bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatalf(string, ...any) { f.fatal = true }
func (f *fakeT) Skipf(string, ...any)  { f.skip = true }

func TestRequireTool(t *testing.T) {
	if p := RequireTool(t, "go"); p == "" {
		t.Fatal("RequireTool found no path for go, which runs this test")
	}
	const missing = "tlsemit-no-such-tool"
	t.Setenv("CI", "true")
	f := &fakeT{}
	RequireTool(f, missing)
	if !f.fatal || f.skip {
		t.Errorf("CI=true: fatal %v skip %v, want a failure", f.fatal, f.skip)
	}
	t.Setenv("CI", "")
	f = &fakeT{}
	RequireTool(f, missing)
	if f.fatal || !f.skip {
		t.Errorf("outside CI: fatal %v skip %v, want a skip", f.fatal, f.skip)
	}
}
