package errwrap

import (
	"errors"
	"io/fs"
	"testing"
)

var (
	errA = errors.New("pkg: a")
	errB = errors.New("pkg: b")
)

// TestNew: the text is sentinel, detail, cause; errors.Is sees the
// sentinel and the cause.
func TestNew(t *testing.T) {
	for _, c := range []struct {
		err  error
		text string
	}{
		{New(errA, "", nil), "pkg: a"},
		{New(errA, "detail", nil), "pkg: a: detail"},
		{New(errA, "", fs.ErrNotExist), "pkg: a: file does not exist"},
		{New(errA, "detail", fs.ErrNotExist), "pkg: a: detail: file does not exist"},
	} {
		if c.err.Error() != c.text || !errors.Is(c.err, errA) || errors.Is(c.err, errB) {
			t.Errorf("%q, want %q", c.err, c.text)
		}
	}
	if !errors.Is(New(errA, "", fs.ErrNotExist), fs.ErrNotExist) {
		t.Error("the cause is not visible")
	}
}

// TestReasonsOf: the first reason listed that err wraps, the last for
// none.
func TestReasonsOf(t *testing.T) {
	rs := Reasons{{Err: errA, Name: "a"}, {Err: errB, Name: "b"}}
	for err, want := range map[error]string{
		New(errB, "", nil): "b", New(errB, "", errA): "a", errors.New("other"): "b", nil: "b",
	} {
		if got := rs.Of(err).Name; got != want {
			t.Errorf("Of(%v) = %s, want %s", err, got, want)
		}
	}
}
