// Package loadtest holds the bounded load test of issue 6: full TLS
// handshakes at high concurrency on loopback against a tlsserver stapling
// through ocspfetch, with the real `openssl ocsp` responder behind it.
//
// It runs only with TLSEMIT_LOAD=1 (`make load`), not in CI by default, and
// prints one summary line per scenario: handshakes per second, errors,
// staples checked, responder requests, goroutines before and after, and
// the process's peak RSS (VmHWM).
package loadtest
