package events_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
	os.Exit(0) // not reached: VerifyTestMain exits
}

// recorder collects calls in order.
type recorder struct{ calls []string }

func (r *recorder) fn(name string) func(...any) {
	return func(...any) { r.calls = append(r.calls, name) }
}

// mustPanic runs f and returns what it panicked with, failing t if it did not.
func mustPanic(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() { v = recover() }()
	f()
	t.Fatalf("no panic")
	return nil
}
