package ocspfetch

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

const (
	testBudget = 300 * time.Millisecond
	// slack bounds scheduling noise on a loaded 2-core machine; the
	// assertion is a bound, not a speed measurement.
	slack = 1500 * time.Millisecond
)

// fault is one row of the matrix: how the responder misbehaves and the
// sentinel the failure must be reported with.
type fault struct {
	name string
	want error
	// setup switches s to the fault. It may replace the leaf's URL
	// behaviour only through s.set, or shut s down.
	setup func(t *testing.T, s *scripted)
}

func faults() []fault {
	return []fault{
		{"down", ErrUnreachable, func(t *testing.T, s *scripted) { s.srv.Close() }},
		{"500", ErrHTTPStatus, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
		}},
		{"tryLater", ErrResponderStatus, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, ocsp.TryLaterErrorResponse) })
		}},
		{"HTML", ErrMalformed, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body>Service Unavailable</body></html>"))
			})
		}},
		{"garbage", ErrMalformed, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, []byte{0x30, 0x82, 0xff, 0xff, 1, 2, 3}) })
		}},
		{"10 MiB body", ErrResponseTooLarge, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				chunk := bytes.Repeat([]byte{0x30}, 64<<10)
				for i := 0; i < 160; i++ { // 10 MiB, no Content-Length
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		}},
		{"another certificate's response", ErrWrongCertificate, func(t *testing.T, s *scripted) {
			other := s.ca.Issue(t, testpki.LeafOptions{})
			s.set(s.respond(t, testpki.ResponseOptions{SerialOverride: other.Cert}))
		}},
		{"same serial, another issuer", ErrWrongCertificate, func(t *testing.T, s *scripted) {
			otherCA := testpki.NewCA(t, "other CA")
			s.set(func(w http.ResponseWriter, r *http.Request) {
				writeOCSP(w, otherCA.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: s.clk.Now().Add(-time.Minute)}))
			})
		}},
		{"expired", ErrExpired, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				now := s.clk.Now()
				writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}))
			})
		}},
		{"ThisUpdate in the future", ErrNotYetValid, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: s.clk.Now().Add(time.Hour)}))
			})
		}},
		{"no NextUpdate, old", ErrExpired, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				writeOCSP(w, s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: s.clk.Now().Add(-NoNextUpdateLifetime - time.Minute), NoNextUpdate: true}))
			})
		}},
		{"signer without OCSPSigning", ErrBadSigner, func(t *testing.T, s *scripted) {
			s.set(s.respond(t, testpki.ResponseOptions{Signer: s.ca.OCSPSigner(t, false)}))
		}},
		{"signer from another CA", ErrBadSigner, func(t *testing.T, s *scripted) {
			s.set(s.respond(t, testpki.ResponseOptions{Signer: testpki.NewCA(t, "rogue").OCSPSigner(t, true)}))
		}},
		{"signed by another key", ErrBadSignature, func(t *testing.T, s *scripted) {
			// The real CA's CertID hashes, a stranger's signature.
			rogue := testpki.NewCA(t, s.ca.Name)
			s.set(func(w http.ResponseWriter, r *http.Request) {
				tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: s.leaf.Cert.SerialNumber,
					ThisUpdate: s.clk.Now().Add(-time.Minute), NextUpdate: s.clk.Now().Add(time.Hour)}
				der, err := ocsp.CreateResponse(s.ca.Cert, s.ca.Cert, tmpl, rogue.Key)
				if err != nil {
					t.Error(err)
				}
				writeOCSP(w, der)
			})
		}},
		{"redirect loop", ErrTooManyRedirects, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.String(), http.StatusFound) })
		}},
		{"redirect to a non-http URL", ErrUnsupportedScheme, func(t *testing.T, s *scripted) {
			s.set(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
			})
		}},
	}
}

// TestFaultMatrixCold: a certificate seen for the first time while its
// responder misbehaves gets no staple, its handshake is not held past the
// budget, and the reason is reported through OnEvent and Stats.
func TestFaultMatrixCold(t *testing.T) {
	for _, fl := range faults() {
		t.Run(fl.name, func(t *testing.T) {
			clk := newClock()
			s := newScripted(t, clk)
			fl.setup(t, s)
			f, rec := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget})
			res := request(t, f, s.leaf.DER, s.ca.DER)
			if res.der != nil || res.err != nil {
				t.Fatalf("bad answer stapled or handshake failed: err %v, %d bytes", res.err, len(res.der))
			}
			if res.elapsed > testBudget+slack {
				t.Fatalf("handshake held %v, budget %v", res.elapsed, testBudget)
			}
			ev, ok := rec.find(EventFailed)
			if !ok || !errors.Is(ev.Err, fl.want) {
				t.Fatalf("want EventFailed with %v, got %+v (events %v)", fl.want, ev, rec.kinds())
			}
			if st := f.Stats(); st.FailuresByReason[fl.want] != 1 || st.Failures != 1 || !errors.Is(st.LastError, fl.want) {
				t.Fatalf("stats: %+v", st)
			}
			// While backing off, later handshakes go on at once without
			// asking again.
			before := s.requests.Load()
			if res := request(t, f, s.leaf.DER, s.ca.DER); res.der != nil || res.elapsed > slack {
				t.Fatalf("during backoff: %d bytes after %v", len(res.der), res.elapsed)
			}
			if s.requests.Load() != before {
				t.Fatal("asked the responder again during backoff")
			}
		})
	}
}

// TestFaultMatrixRefresh: with a Good staple cached, a refresh that meets
// the fault keeps serving the cached Good answer, at once, and reports why.
func TestFaultMatrixRefresh(t *testing.T) {
	for _, fl := range faults() {
		t.Run(fl.name, func(t *testing.T) {
			clk := newClock()
			s := newScripted(t, clk)
			f, rec := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget})
			good := request(t, f, s.leaf.DER, s.ca.DER)
			if good.der == nil {
				t.Fatalf("no Good staple to start with: %v", rec.kinds())
			}
			fl.setup(t, s)
			clk.Advance(35 * time.Minute) // past the midpoint (30 min ± 3)
			if n := refreshNow(t, f, clk.Now()); n != 1 {
				t.Fatalf("%d refreshes, want 1", n)
			}
			res := request(t, f, s.leaf.DER, s.ca.DER)
			if !bytes.Equal(res.der, good.der) {
				t.Fatalf("cached Good not kept: got %d bytes (err %v)", len(res.der), res.err)
			}
			if res.elapsed > slack {
				t.Fatalf("cache hit took %v", res.elapsed)
			}
			ev, ok := rec.find(EventFailed)
			if !ok || !errors.Is(ev.Err, fl.want) {
				t.Fatalf("want EventFailed with %v, got %+v (events %v)", fl.want, ev, rec.kinds())
			}
			if st := f.Stats(); st.FailuresByReason[fl.want] != 1 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

// TestSlowResponder: the first handshake goes on unstapled after the
// budget; the fetch completes in the background and the next handshake is
// stapled without a second request.
func TestSlowResponder(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	good := s.good(t)
	release := make(chan struct{})
	s.set(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		good(w, r)
	})
	f, rec := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget})
	res := request(t, f, s.leaf.DER, s.ca.DER)
	if res.der != nil || res.err != nil {
		t.Fatalf("late answer: err %v, %d bytes", res.err, len(res.der))
	}
	if res.elapsed < testBudget/2 || res.elapsed > testBudget+slack {
		t.Fatalf("handshake held %v, budget %v", res.elapsed, testBudget)
	}
	if ev, ok := rec.find(EventBudgetExceeded); !ok || !errors.Is(ev.Err, ErrBudgetExceeded) || f.Stats().BudgetExceeded != 1 {
		t.Fatalf("budget not reported: %v", rec.kinds())
	}
	close(release)
	testenv.WaitFor(t, func() bool { return f.Stats().Fetched > 0 })
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatal("the background fetch did not serve the next handshake")
	}
	if s.requests.Load() != 1 {
		t.Fatalf("%d requests, want 1", s.requests.Load())
	}
}

// TestNonHTTPResponderURL: a certificate whose only OCSP URL is not http(s)
// is never fetched, never stapled, and reported as having no responder.
func TestNonHTTPResponderURL(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	for _, u := range []string{"ftp://127.0.0.1/ocsp", "file:///etc/passwd", "ldap://127.0.0.1/"} {
		leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{u}})
		f, rec := newFetcher(t, Options{FailClosed: true})
		res := request(t, f, leaf.DER, ca.DER)
		if res.der != nil || res.err != nil || res.elapsed > slack {
			t.Fatalf("%s: err %v, %d bytes, %v", u, res.err, len(res.der), res.elapsed)
		}
		if ev, ok := rec.find(EventNoResponder); !ok || !errors.Is(ev.Err, ErrNoResponder) || !strings.Contains(ev.Err.Error(), u) {
			t.Fatalf("%s: %v", u, rec.kinds())
		}
		if f.Stats().Requests != 0 {
			t.Fatalf("%s: fetched", u)
		}
	}
}
