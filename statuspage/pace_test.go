package statuspage

import (
	"testing"
	"time"
)

// The pause between two responses keeps a page to a twentieth of a core
// and to maxRate bytes a second, and a slow write holds the others for at
// most maxRest.
func TestRest(t *testing.T) {
	for _, c := range []struct {
		lastWrite time.Duration
		size      int
		want      time.Duration
	}{
		{time.Millisecond, 1 << 10, 19 * time.Millisecond},           // the write's share
		{10 * time.Microsecond, 8 << 20, time.Second},                // a fast write of 8 MiB: a second of maxRate
		{50 * time.Microsecond, 80 << 10, 9765625 * time.Nanosecond}, // 80 KiB at 8 MiB/s
		{time.Second, 1 << 10, maxRest},                              // a slow client
		{time.Second, 16 << 20, 2 * time.Second},                     // the rate still holds after a slow write
		{0, 0, 0},
	} {
		if got := rest(c.lastWrite, c.size); got != c.want {
			t.Errorf("rest(%v, %d) = %v, want %v", c.lastWrite, c.size, got, c.want)
		}
	}
}
