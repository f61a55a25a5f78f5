package statuspage

import (
	"testing"
	"time"
)

func TestRelativeTimes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{3*time.Hour + 12*time.Minute + 40*time.Second, "in 3 h 12 m"},
		{-(4*time.Minute + 10*time.Second), "4 m 10 s ago"},
		{42 * time.Second, "in 42 s"},
		{50*time.Hour + 5*time.Minute, "in 2 d 2 h"},
		{3 * time.Hour, "in 3 h"},
		{300 * time.Millisecond, "now"},
		{-2 * time.Second, "2 s ago"},
	} {
		if got := relative(now, now.Add(c.d)); got != c.want {
			t.Errorf("%v: %q, want %q", c.d, got, c.want)
		}
	}
	if got := absolute(now); got[:21] != "2026-01-02T03:04:05Z " {
		t.Errorf("absolute: %q", got)
	}
}

// TestSizes: a CRL's size in the unit a reader takes in at a glance.
func TestSizes(t *testing.T) {
	for n, want := range map[int]string{
		0: "0 B", 268: "268 B", 999: "999 B", 1000: "1.0 kB", 264_500: "264.5 kB",
		999_960: "1.0 MB", 34_000_000: "34.0 MB", 2_500_000_000: "2.5 GB",
	} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
