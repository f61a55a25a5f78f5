package ocspfetch

import (
	"net/http"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestBackgroundRefresh: the Fetcher's own goroutine refreshes a response
// once it passes the midpoint of its validity, on the real clock.
func TestBackgroundRefresh(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	// 20 s of validity, 10 s of it gone: due at once (within a second of
	// jitter), the refresh floor lowered to a second.
	s.set(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: now.Add(-10 * time.Second), NextUpdate: now.Add(10 * time.Second)}))
	})
	f, err := New(Options{MinRefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatal("no staple")
	}
	testenv.WaitFor(t, func() bool { return f.Stats().Fetched >= 2 }) // the background refresh
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatal("no staple after the refresh")
	}
}

// TestIdleCertificateForgotten: a certificate no handshake asked about for
// a day is dropped at its next refresh instead of refreshed.
func TestIdleCertificateForgotten(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	f, _ := newFetcher(t, Options{Now: clk.Now})
	request(t, f, s.leaf.DER, s.ca.DER)
	for i := 0; i < 3; i++ { // used: refreshed
		clk.Advance(40 * time.Minute)
		request(t, f, s.leaf.DER, s.ca.DER)
		if n := refreshNow(t, f, clk.Now()); n != 1 {
			t.Fatalf("round %d: %d refreshes", i, n)
		}
	}
	for i := 0; i < 60 && f.Stats().Certificates == 1; i++ { // unused
		clk.Advance(40 * time.Minute)
		refreshNow(t, f, clk.Now())
	}
	if f.Stats().Certificates != 0 {
		t.Fatal("idle certificate never forgotten")
	}
	if clk.Now().Sub(time.Now()) < idleTimeout {
		t.Fatal("forgotten too early")
	}
}
