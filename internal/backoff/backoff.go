// Package backoff draws the delays of what many servers do on the same
// schedule (refresh a staple or a CRL, retry a failure, poll Redis), at
// random within bounds, so that they do not all do it at once.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Jitter returns a uniform duration in [-d, d]; 0 for d <= 0.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*d)+1)) - d
}

// Retry is the delay before retry n (1 for the first after a failure):
// lo doubled n-1 times, capped at hi, drawn from its upper half.
func Retry(n int, lo, hi time.Duration) time.Duration {
	d := hi
	if n-1 < 62 {
		if x := lo << (n - 1); x > 0 && x < d {
			d = x
		}
	}
	return d - time.Duration(rand.Int64N(int64(d/2)+1))
}
