package ocspfetch

import (
	"testing"
)

// hotFetcher returns a Fetcher with a Good staple cached for s.leaf.
func hotFetcher(tb testing.TB) (*Fetcher, *scripted) {
	clk := newClock()
	s := newScripted(tb, clk)
	f, _ := newFetcher(tb, Options{Now: clk.Now})
	if res := request(tb, f, s.leaf.DER, s.ca.DER); res.der == nil {
		tb.Fatal("no staple")
	}
	return f, s
}

// TestCacheHitAllocs: the cache hit path of OCSPRequest allocates nothing
// and calls back on the caller's goroutine, before returning.
func TestCacheHitAllocs(t *testing.T) {
	f, s := hotFetcher(t)
	cert, issuer := s.leaf.DER, s.ca.DER
	var got []byte
	called := false
	cb := func(err error, der []byte) { got, called = der, true }
	allocs := testing.AllocsPerRun(1000, func() {
		called = false
		f.OCSPRequest(cert, issuer, cb)
		if !called {
			panic("callback not called synchronously on a cache hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("cache hit allocates %v times per call, want 0", allocs)
	}
	if got == nil {
		t.Fatal("cache hit stapled nothing")
	}
	if before := s.requests.Load(); before != 1 {
		t.Fatalf("%d requests", before)
	}
}

// BenchmarkOCSPRequestHit measures the handshake's cost of a cached staple.
func BenchmarkOCSPRequestHit(b *testing.B) {
	f, s := hotFetcher(b)
	cert, issuer := s.leaf.DER, s.ca.DER
	var n int
	cb := func(err error, der []byte) { n += len(der) }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.OCSPRequest(cert, issuer, cb)
	}
	if n == 0 {
		b.Fatal("nothing stapled")
	}
}

// BenchmarkOCSPRequestHitParallel is the same from every core at once.
func BenchmarkOCSPRequestHitParallel(b *testing.B) {
	f, s := hotFetcher(b)
	cert, issuer := s.leaf.DER, s.ca.DER
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cb := func(err error, der []byte) {
			if der == nil {
				panic("nothing stapled")
			}
		}
		for pb.Next() {
			f.OCSPRequest(cert, issuer, cb)
		}
	})
}
