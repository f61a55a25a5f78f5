package backoff

import (
	"testing"
	"time"
)

// TestJitter: within [-d, d], and both signs come up.
func TestJitter(t *testing.T) {
	if Jitter(0) != 0 || Jitter(-time.Second) != 0 {
		t.Fatal("jitter of nothing")
	}
	var neg, pos bool
	for range 1000 {
		j := Jitter(time.Second)
		if j < -time.Second || j > time.Second {
			t.Fatalf("Jitter(1s) = %v", j)
		}
		neg, pos = neg || j < 0, pos || j > 0
	}
	if !neg || !pos {
		t.Fatal("one-sided")
	}
}

// TestRetry: doubling from lo, capped at hi, in the upper half, also past
// the point where doubling would overflow.
func TestRetry(t *testing.T) {
	for n, d := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 64: 5 * time.Second, 1000: 5 * time.Second} {
		for range 50 {
			if got := Retry(n, time.Second, 5*time.Second); got < d/2 || got > d {
				t.Fatalf("Retry(%d) = %v, want within [%v, %v]", n, got, d/2, d)
			}
		}
	}
}
