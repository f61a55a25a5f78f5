package ocspfetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// serve makes s answer with der, whatever it is asked.
func (s *scripted) serve(der []byte) {
	s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, der) })
}

// TestOlderResponseRefused: ThisUpdate never goes backwards. A Revoked
// answer is cached (and stapled, with StapleRevoked); at refresh an older
// Good answer, still unexpired, is replayed: it is refused as a fault and
// the Revoked one stays. The same holds between two Good answers.
func TestOlderResponseRefused(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	t0 := clk.Now()
	oldGood := s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: t0.Add(-10 * time.Minute)})
	revoked := s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{Status: ocsp.Revoked, ThisUpdate: t0.Add(-time.Minute), RevokedAt: t0.Add(-2 * time.Minute)})
	s.serve(revoked)
	f, rec := newFetcher(t, Options{Now: clk.Now, StapleRevoked: true})
	if res := request(t, f, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, revoked) {
		t.Fatal("the Revoked answer is not stapled")
	}
	s.serve(oldGood)
	clk.Advance(35 * time.Minute) // past the midpoint; oldGood still valid
	if n := refreshNow(t, f, clk.Now()); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
	if res := request(t, f, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, revoked) {
		t.Fatal("a replayed older Good answer replaced the Revoked one")
	}
	if st, err := f.Staple(context.Background(), s.leaf.DER, s.ca.DER); !errors.Is(err, ErrRevoked) || st.Status != ocsp.Revoked {
		t.Fatalf("Staple after the replay: %v", err)
	}
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrOlderResponse) {
		t.Fatalf("replay not reported as ErrOlderResponse: %v", rec.kinds())
	}

	// Good, then an older Good.
	g, _ := newFetcher(t, Options{Now: clk.Now})
	newer := s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute)})
	s.serve(newer)
	if res := request(t, g, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, newer) {
		t.Fatal("no staple")
	}
	s.serve(s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-10 * time.Minute)}))
	clk.Advance(35 * time.Minute)
	refreshNow(t, g, clk.Now())
	if res := request(t, g, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, newer) {
		t.Fatal("an older Good answer replaced a newer one")
	}
}

// TestFirstRetryWithinSeconds: the responder is down when a certificate is
// first seen and back a moment later; stapling resumes within seconds, by
// the scheduler's retry and by the next handshake, not after a minute.
func TestFirstRetryWithinSeconds(t *testing.T) {
	for _, by := range []string{"scheduler", "handshake"} {
		t.Run(by, func(t *testing.T) {
			clk := newClock()
			s := newScripted(t, clk)
			s.set(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "restarting", http.StatusServiceUnavailable)
			})
			f, _ := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget})
			if res := request(t, f, s.leaf.DER, s.ca.DER); res.der != nil {
				t.Fatal("stapled while the responder is down")
			}
			s.set(s.good(t))
			clk.Advance(5 * time.Second)
			if by == "scheduler" {
				if n := refreshNow(t, f, clk.Now()); n != 1 {
					t.Fatalf("%d retries due 5 s after the failure, want 1", n)
				}
			}
			if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
				t.Fatal("not stapled 5 s after a failed first fetch although the responder is back")
			}
		})
	}
}

// shortLived runs handshakes every 100 ms for 10 s against a responder
// whose answers live 2 s (ThisUpdate to the second, as GeneralizedTime has
// it). It returns the responder requests and how many of them got each
// answer (by ThisUpdate).
func shortLived(t *testing.T, o Options) (requests int64, answers map[time.Time]int) {
	t.Helper()
	clk := newClock()
	s := newScripted(t, clk)
	var mu sync.Mutex
	answers = map[time.Time]int{}
	s.set(func(w http.ResponseWriter, r *http.Request) {
		this := clk.Now().Truncate(time.Second)
		mu.Lock()
		answers[this]++
		mu.Unlock()
		writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: this, NextUpdate: this.Add(2 * time.Second)}))
	})
	o.Now, o.HandshakeBudget = clk.Now, testBudget
	f, _ := newFetcher(t, o)
	for elapsed := time.Duration(0); elapsed < 10*time.Second; elapsed += 100 * time.Millisecond {
		refreshNow(t, f, clk.Now())
		f.OCSPRequest(s.leaf.DER, s.ca.DER, func(error, []byte) {})
		clk.Advance(100 * time.Millisecond)
	}
	settle(t, f)
	mu.Lock()
	defer mu.Unlock()
	return s.requests.Load(), answers
}

// TestShortLivedResponsesRefreshFloor: against a responder whose answers
// live 2 s, handshakes every 100 ms for 10 s ask the responder at most once
// per MinRefreshInterval (the default, then a second), and no request
// brings back an answer already had.
func TestShortLivedResponsesRefreshFloor(t *testing.T) {
	for _, floor := range []time.Duration{0, time.Second} {
		n, answers := shortLived(t, Options{MinRefreshInterval: floor})
		if floor == 0 {
			floor = DefaultMinRefreshInterval
		}
		if max := int64(10*time.Second/floor) + 1; n > max {
			t.Fatalf("%d responder requests in 10 s, want at most %d (MinRefreshInterval %v)", n, max, floor)
		}
		for this, k := range answers {
			if k > 1 {
				t.Fatalf("MinRefreshInterval %v: %d requests brought back the answer of %v", floor, k, this.Format(time.TimeOnly))
			}
		}
		if floor == time.Second && n < 5 {
			t.Fatalf("MinRefreshInterval 1s: only %d requests in 10 s for answers that live 2 s", n)
		}
	}
}

// TestRetryDelayOptions: retries start at MinRetryDelay and double up to
// MaxRetryDelay, each drawn from the upper half of its delay.
func TestRetryDelayOptions(t *testing.T) {
	f, _ := newFetcher(t, Options{MinRetryDelay: time.Second, MaxRetryDelay: 5 * time.Second})
	for n, d := range []time.Duration{1, 2, 4, 5, 5} {
		d *= time.Second
		for range 50 {
			if got := f.retryDelay(n + 1); got < d/2 || got > d {
				t.Fatalf("retry %d: delay %v, want within [%v, %v]", n+1, got, d/2, d)
			}
		}
	}
	if _, err := New(Options{MinRetryDelay: time.Hour, MaxRetryDelay: time.Minute}); err == nil {
		t.Fatal("MaxRetryDelay below MinRetryDelay accepted")
	}
}

// TestStatsSeparateOutcomes: every OCSPRequest is one of Hits (stapled from
// memory), Misses (waited for a fetch) and Unstapled (answered at once
// without a staple).
func TestStatsSeparateOutcomes(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	f, _ := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget})
	noResponder := s.ca.Issue(t, testpki.LeafOptions{})
	for range 3 {
		request(t, f, s.leaf.DER, s.ca.DER) // a miss, then two hits
	}
	for range 2 {
		request(t, f, noResponder.DER, s.ca.DER)
	}
	s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	down := s.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{s.srv.URL}})
	for range 2 {
		request(t, f, down.DER, s.ca.DER) // a miss, then unstapled while retrying
	}
	st := f.Stats()
	if st.Hits != 2 || st.Misses != 2 || st.Unstapled != 3 {
		t.Fatalf("hits %d, misses %d, unstapled %d; want 2, 2, 3", st.Hits, st.Misses, st.Unstapled)
	}
}
