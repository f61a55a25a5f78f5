package ocspfetch

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// scripted is an httptest OCSP responder whose behaviour the test sets.
type scripted struct {
	srv      *httptest.Server
	ca       *testpki.CA
	leaf     *testpki.Leaf
	clk      *testclock.Clock
	requests atomic.Int64
	mu       sync.Mutex
	h        http.HandlerFunc
}

func newScripted(t testing.TB, clk *testclock.Clock) *scripted {
	t.Helper()
	s := &scripted{ca: testpki.NewCA(t, "scripted CA"), clk: clk}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.leaf = s.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{s.srv.URL}})
	s.set(s.good(t))
	return s
}

func (s *scripted) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// good answers Good, produced a minute ago by the scripted clock, valid an
// hour.
func (s *scripted) good(t testing.TB) http.HandlerFunc {
	return s.respond(t, testpki.ResponseOptions{})
}

// respond answers with a response built from o at request time, with times
// relative to the scripted clock when o leaves them zero.
func (s *scripted) respond(t testing.TB, o testpki.ResponseOptions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		oo := o
		if oo.ThisUpdate.IsZero() {
			oo.ThisUpdate = s.clk.Now().Add(-time.Minute)
		}
		writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, oo))
	}
}

func writeOCSP(w http.ResponseWriter, der []byte) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}
