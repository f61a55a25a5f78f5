package crlfetch

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// bomb is 64 MiB of zeros, gzipped (about 64 KiB).
var bomb = gz(make([]byte, 64<<20))

// TestHostileHosts: each shape a hostile or broken CRL host can take is
// refused with the sentinel that says why, and no client passes for it:
// the good client gets the code Node would give (UNABLE_TO_GET_CRL, or the
// CRL's own fault), the revoked client never passes.
func TestHostileHosts(t *testing.T) {
	const maxSize = 64 << 10
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("a redirect reached another origin") }))
	defer other.Close()
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, m *mtls) http.HandlerFunc
		err   error  // the fetch's failure
		code  string // the good client's refusal
		ok    bool   // the CRL is good after all: the good client passes
	}{
		{"body over MaxSize with Content-Length", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(maxSize+1))
				w.Write(make([]byte, maxSize+1))
			}
		}, ErrTooLarge, "UNABLE_TO_GET_CRL", false},
		{"body over MaxSize, chunked", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				for range 100 {
					w.Write(make([]byte, 4096))
					w.(http.Flusher).Flush()
				}
			}
		}, ErrTooLarge, "UNABLE_TO_GET_CRL", false},
		{"gzip bomb, Content-Encoding", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(bomb)
			}
		}, ErrTooLarge, "UNABLE_TO_GET_CRL", false},
		{"gzip bomb, a .gz file", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { w.Write(bomb) }
		}, ErrTooLarge, "UNABLE_TO_GET_CRL", false},
		{"gzip, Content-Encoding", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := gz(m.interCRL(t, testpki.CRLOptions{}))
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(body)
			}
		}, nil, "", true},
		{"gzip, a .gz file", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := gz(m.interCRL(t, testpki.CRLOptions{}))
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, nil, "", true},
		{"PEM", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := testpki.CRLPEM(m.interCRL(t, testpki.CRLOptions{}))
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, nil, "", true},
		{"brotli, unasked", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "br")
				w.Write([]byte{0x1b, 0x00})
			}
		}, ErrMalformed, "UNABLE_TO_GET_CRL", false},
		{"redirect to another origin", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/inter.crl", http.StatusFound)
			}
		}, ErrRefusedAddress, "UNABLE_TO_GET_CRL", false},
		{"redirect within the origin", func(t *testing.T, m *mtls) http.HandlerFunc {
			m.host.Set("/moved.crl", m.interCRL(t, testpki.CRLOptions{}))
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/moved.crl", http.StatusMovedPermanently)
			}
		}, nil, "", true},
		{"redirect loop", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/inter.crl", http.StatusFound) }
		}, ErrTooManyRedirects, "UNABLE_TO_GET_CRL", false},
		{"redirect to another scheme", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "ftp://127.0.0.1/inter.crl", http.StatusFound)
			}
		}, ErrUnsupportedScheme, "UNABLE_TO_GET_CRL", false},
		{"HTML", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html><body>Welcome</body></html>")) }
		}, ErrMalformed, "UNABLE_TO_GET_CRL", false},
		{"truncated CRL", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := m.interCRL(t, testpki.CRLOptions{})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body[:len(body)/2]) }
		}, ErrMalformed, "UNABLE_TO_GET_CRL", false},
		{"HTTP 500", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", 500) }
		}, ErrHTTPStatus, "UNABLE_TO_GET_CRL", false},
		{"connection cut mid-body", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := m.interCRL(t, testpki.CRLOptions{})
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body[:10])
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			}
		}, ErrUnreachable, "UNABLE_TO_GET_CRL", false},
		{"trickle past FetchTimeout", func(t *testing.T, m *mtls) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte{0x30})
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}
		}, ErrUnreachable, "UNABLE_TO_GET_CRL", false},
		{"forged (another key, the issuer's name)", func(t *testing.T, m *mtls) http.HandlerFunc {
			impostor := testpki.NewCA(t, "crlfetch inter")
			body := m.inter.CRL(t, testpki.CRLOptions{SignWith: impostor.Key})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, ErrSignature, "CRL_SIGNATURE_FAILURE", false},
		{"another CA's CRL", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := testpki.NewCA(t, "someone else").CRL(t, testpki.CRLOptions{})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, ErrNoIssuer, "UNABLE_TO_GET_CRL", false},
		{"not yet valid", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := m.interCRL(t, testpki.CRLOptions{ThisUpdate: time.Now().Add(time.Hour), NextUpdate: time.Now().Add(2 * time.Hour)})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, ErrNotYetValid, "CRL_NOT_YET_VALID", false},
		{"expired", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := m.interCRL(t, testpki.CRLOptions{ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: time.Now().Add(-time.Hour)})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, ErrExpired, "CRL_HAS_EXPIRED", false},
		{"delta CRL", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := crltest.Build(t, crltest.Spec{Issuer: m.inter, Number: big.NewInt(9),
				Extensions: []crltest.Ext{{ID: []int{2, 5, 29, 27}, Critical: true, Value: []byte{2, 1, 8}}}})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, ErrUnsupported, "UNABLE_TO_GET_CRL", false},
		{"another partition of a sharded CRL", func(t *testing.T, m *mtls) http.HandlerFunc {
			body := crltest.Build(t, crltest.Spec{Issuer: m.inter, Number: big.NewInt(1),
				Extensions: []crltest.Ext{crltest.IDP{URIs: []string{m.host.URL + "/shard-2.crl"}}.Ext()}})
			return func(w http.ResponseWriter, r *http.Request) { w.Write(body) }
		}, nil, "UNABLE_TO_GET_CRL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMTLS(t)
			m.publishRoot(t)
			m.host.Handle("/inter.crl", tc.serve(t, m))
			f, rec := newFetcher(t, Options{MaxSize: maxSize, FetchTimeout: time.Second, FirstWait: 5 * time.Second})
			if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) && (tc.ok || crl.Code(err) != tc.code) {
				t.Fatalf("revoked client: %v", err)
			} else if err == nil {
				t.Fatal("revoked client passed")
			}
			err := m.check(f, m.good)
			if tc.ok {
				if err != nil {
					t.Fatalf("good CRL: %v", err)
				}
				return
			}
			if crl.Code(err) != tc.code {
				t.Fatalf("good client: code %q (%v), want %s", crl.Code(err), err, tc.code)
			}
			if tc.err != nil {
				if ev, _ := rec.lastFrom(EventFailed, m.host.URL+"/inter.crl"); !errors.Is(ev.Err, tc.err) {
					t.Fatalf("fetch failure %v, want %v", ev.Err, tc.err)
				}
			}
		})
	}
}

// interCRL is the intermediate's CRL revoking the bad client.
func (m *mtls) interCRL(t testing.TB, o testpki.CRLOptions) []byte {
	o.Revoked = append(o.Revoked, m.bad.Cert.SerialNumber)
	return m.inter.CRL(t, o)
}

// TestRefuseInternalAddresses: with the option, a distribution point on
// loopback is refused before any request.
func TestRefuseInternalAddresses(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, rec := newFetcher(t, Options{RefuseInternalAddresses: true})
	if err := m.check(f, m.good); !errors.Is(err, ErrNoCRL) {
		t.Fatal(err)
	}
	if ev, _ := rec.last(EventFailed); !errors.Is(ev.Err, ErrRefusedAddress) {
		t.Fatalf("%v", ev.Err)
	}
	if m.host.Hits("/inter.crl") != 0 {
		t.Fatal("a request went to loopback")
	}
}

// panicTransport is an HTTP transport that panics.
type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport exploded") }

// TestPanickingTransportAndOnEvent: user code that panics costs the fetch
// it happened in, not the process.
func TestPanickingTransportAndOnEvent(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, err := New(Options{HTTPClient: &http.Client{Transport: panicTransport{}}, OnEvent: func(Event) { panic("listener exploded") }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.check(f, m.good); !errors.Is(err, ErrNoCRL) || !errors.Is(err, ErrPanic) {
		t.Fatalf("%v", err)
	}
	if f.stats.panics.Load() < 2 {
		t.Fatalf("%d panics counted", f.stats.panics.Load())
	}
}
