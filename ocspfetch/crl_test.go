package ocspfetch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// crlPKI is a CA run by the real `openssl ca`, whose CRL (`openssl ca
// -gencrl`) a CRL host serves at /ca.crl, and which issues server
// certificates that name no OCSP responder but that CRL, as Let's
// Encrypt's have since 2025.
type crlPKI struct {
	ca   *testpki.CA
	ossl *crltest.OpenSSLCA
	host *crltest.Server
}

func newCRLPKI(t *testing.T) *crlPKI {
	t.Helper()
	ca := testpki.NewCA(t, "CRL-only CA")
	return &crlPKI{ca: ca, ossl: crltest.NewOpenSSLCA(t, ca, false), host: crltest.NewServer(t)}
}

func (p *crlPKI) url() string { return p.host.URL + "/ca.crl" }

// leaf issues a server certificate naming only the CRL; ocspURL adds a
// responder too.
func (p *crlPKI) leaf(t *testing.T, name string, ocspURL ...string) *testpki.Leaf {
	return p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{name}, CRLDistributionPoints: []string{p.url()}, OCSPServer: ocspURL})
}

// publish has openssl make a CRL (thisUpdate and nextUpdate as given;
// zero: now and a day later) and the host serve it.
func (p *crlPKI) publish(last, next time.Time) {
	p.host.Set("/ca.crl", p.ossl.GenCRL(last, next))
}

func certStatus(t *testing.T, f *Fetcher, l *testpki.Leaf) CertificateStatus {
	t.Helper()
	for _, c := range f.Certificates() {
		if c.Serial == l.Serial() {
			return c
		}
	}
	t.Fatalf("certificate %s not tracked", l.Serial())
	return CertificateStatus{}
}

// TestCRLServedCertificate: with no options, a served certificate that
// names no OCSP responder but a CRL distribution point gets its
// revocation from its CRL (made by openssl ca -gencrl): Certificates says
// good or revoked with Source "crl", LastError wraps ErrRevoked (and
// crlfetch's) for the revoked one, EventRevoked is emitted, Stats counts
// it. Handshakes are answered at once, before any CRL is fetched, and get
// no staple; FailClosed does not refuse them.
func TestCRLServedCertificate(t *testing.T) {
	p := newCRLPKI(t)
	good, bad := p.leaf(t, "good.example"), p.leaf(t, "revoked.example")
	p.ossl.Revoke(bad)
	p.publish(time.Time{}, time.Time{})
	// The Fetcher's clock is the test's: a check rescheduled by the clock
	// that runs it is never due again in the same round.
	clk := newClock()
	f, rec := newFetcher(t, Options{FailClosed: true, Now: clk.Now})

	for _, l := range []*testpki.Leaf{good, bad} {
		if res := request(t, f, l.DER, p.ca.DER); res.err != nil || res.der != nil {
			t.Fatalf("%s: handshake answer %v, %d bytes", l.Cert.DNSNames[0], res.err, len(res.der))
		}
	}
	if n := p.host.Hits("/ca.crl"); n != 0 {
		t.Fatalf("the handshakes waited for the CRL: %d fetches before their answers", n)
	}
	if n := refreshNow(t, f, clk.Now()); n != 2 {
		t.Fatalf("%d checks started, want 2", n)
	}

	gs, bs := certStatus(t, f, good), certStatus(t, f, bad)
	if gs.Source != "crl" || gs.CRL == nil || gs.CRL.Status != ocsp.Good || gs.LastError != nil || gs.Stapled || gs.Staple != nil ||
		gs.CRL.URL != p.url() || gs.CRL.Number == nil || gs.CRL.NextUpdate.IsZero() || gs.NextRefresh.IsZero() {
		t.Errorf("good: %+v (CRL %+v)", gs, gs.CRL)
	}
	if bs.Source != "crl" || bs.CRL == nil || bs.CRL.Status != ocsp.Revoked || !errors.Is(bs.LastError, ErrRevoked) ||
		!errors.Is(bs.LastError, crlfetch.ErrRevoked) || bs.Stapled {
		t.Errorf("revoked: %+v (CRL %+v)", bs, bs.CRL)
	}
	ev, ok := rec.find(EventRevoked)
	if !ok || ev.Serial != bad.Serial() || ev.Source != "crl" || !errors.Is(ev.Err, ErrRevoked) || ev.NextUpdate.IsZero() {
		t.Errorf("revoked event: %+v (%v)", ev, rec.kinds())
	}
	if ev, ok := rec.find(EventFetched); !ok || ev.Source != "crl" {
		t.Errorf("fetched event: %+v", ev)
	}
	if st := f.Stats(); st.Revoked != 1 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
	// Later handshakes: at once, from memory, unstapled, not refused.
	for _, l := range []*testpki.Leaf{good, bad} {
		if res := request(t, f, l.DER, p.ca.DER); res.err != nil || res.der != nil {
			t.Fatalf("%s: later handshake %v, %d bytes", l.Cert.DNSNames[0], res.err, len(res.der))
		}
	}
	if st := f.Stats(); st.Unstapled != 4 || st.Misses != 0 || st.Requests != 0 {
		t.Errorf("handshakes: %+v", st)
	}
	// Rechecks read the CRL held: no new fetch, no new report.
	clk.Advance(2 * DefaultMinRefreshInterval)
	if n := refreshNow(t, f, clk.Now()); n != 2 {
		t.Fatalf("%d rechecks", n)
	}
	if n := p.host.Hits("/ca.crl"); n != 1 {
		t.Errorf("CRL fetched %d times, want once", n)
	}
	if st := f.Stats(); st.Revoked != 1 {
		t.Errorf("a recheck of the same CRL reported the revocation again: %+v", st)
	}
}

// TestCRLRefreshSeesRevocation: the CRL is refreshed before its
// nextUpdate (here a CRL of a few seconds' life, by the Fetcher's own
// crlfetch.Fetcher, with no options), and the next check of the
// certificate reads the newer CRL, which lists it: EventRefreshed and
// EventRevoked.
func TestCRLRefreshSeesRevocation(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "soon-revoked.example")
	now := time.Now().Truncate(time.Second)
	p.publish(now, now.Add(3*time.Second))
	revoked := make(chan Event, 1)
	rec := newRecorder()
	f, err := New(Options{MinRefreshInterval: 20 * time.Millisecond, OnEvent: func(e Event) {
		rec.OnEvent(e)
		if e.Kind == EventRevoked {
			select {
			case revoked <- e:
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrNoResponder) {
		t.Fatalf("first reading: %v", err)
	}
	if cs := certStatus(t, f, leaf); cs.CRL == nil || cs.CRL.Status != ocsp.Good {
		t.Fatalf("before: %+v", cs)
	}
	p.ossl.Revoke(leaf)
	p.publish(time.Time{}, time.Time{})
	select {
	case ev := <-revoked:
		if !errors.Is(ev.Err, ErrRevoked) || ev.Source != "crl" {
			t.Fatalf("revoked event %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the refreshed CRL's revocation was not seen; events %v", rec.kinds())
	}
	if _, ok := rec.find(EventRefreshed); !ok {
		t.Errorf("no refreshed event: %v", rec.kinds())
	}
	if cs := certStatus(t, f, leaf); cs.CRL == nil || cs.CRL.Status != ocsp.Revoked || !errors.Is(cs.LastError, ErrRevoked) || p.host.Hits("/ca.crl") < 2 {
		t.Fatalf("after: %+v (%d fetches)", cs, p.host.Hits("/ca.crl"))
	}
}

// TestCRLBothOCSPAndCRL: a certificate that names a responder and a CRL
// is stapled from its responder as ever; its CRL is not fetched.
func TestCRLBothOCSPAndCRL(t *testing.T) {
	p := newCRLPKI(t)
	s := newScripted(t, newClock())
	s.ca = p.ca
	s.leaf = p.leaf(t, "both.example", s.srv.URL)
	f, rec := newFetcher(t, Options{})
	res := request(t, f, s.leaf.DER, p.ca.DER)
	if res.err != nil || res.der == nil {
		t.Fatalf("not stapled: %v", res.err)
	}
	refreshNow(t, f, time.Now().Add(time.Hour))
	cs := certStatus(t, f, s.leaf)
	if cs.Source != "ocsp" || cs.CRL != nil || cs.Staple == nil || p.host.Hits("/ca.crl") != 0 {
		t.Fatalf("%+v; CRL fetched %d times", cs, p.host.Hits("/ca.crl"))
	}
	if ev, ok := rec.find(EventFetched); !ok || ev.Source != "ocsp" {
		t.Fatalf("fetched event %+v", ev)
	}
}

// TestCRLUnavailable: a CRL host that serves nothing leaves the
// certificate's revocation unknown: LastError wraps ErrCRLUnavailable and
// crlfetch's reason, EventFailed and the failure counters say so, and
// handshakes go on (FailClosed too). When the host comes back, the next
// check (within MinRefreshInterval) reads the CRL.
func TestCRLUnavailable(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "outage.example")
	failed, fetched := make(chan Event, 1), make(chan Event, 1)
	f, err := New(Options{FailClosed: true, MinRetryDelay: 10 * time.Millisecond, MinRefreshInterval: 50 * time.Millisecond,
		OnEvent: func(e Event) {
			ch := map[EventKind]chan Event{EventFailed: failed, EventFetched: fetched}[e.Kind]
			select {
			case ch <- e:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res := request(t, f, leaf.DER, p.ca.DER); res.err != nil || res.der != nil {
		t.Fatalf("handshake: %v", res.err)
	}
	ev := within(t, failed)
	if !errors.Is(ev.Err, ErrCRLUnavailable) || !errors.Is(ev.Err, crlfetch.ErrNoCRL) || !errors.Is(ev.Err, crlfetch.ErrHTTPStatus) {
		t.Fatalf("first event %+v", ev)
	}
	cs := certStatus(t, f, leaf)
	if cs.CRL != nil || !errors.Is(cs.LastError, ErrCRLUnavailable) || cs.Failures < 1 {
		t.Fatalf("status %+v", cs)
	}
	if st := f.Stats(); st.FailuresByReason[ErrCRLUnavailable] < 1 || !errors.Is(st.LastError, ErrCRLUnavailable) {
		t.Fatalf("stats %+v", st)
	}
	if res := request(t, f, leaf.DER, p.ca.DER); res.err != nil {
		t.Fatalf("FailClosed refused a certificate without a responder: %v", res.err)
	}
	p.publish(time.Time{}, time.Time{})
	within(t, fetched)
	if cs := certStatus(t, f, leaf); cs.CRL == nil || cs.CRL.Status != ocsp.Good || cs.LastError != nil || cs.Failures != 0 {
		t.Fatalf("after the host came back: %+v", cs)
	}
}

// TestCRLGivenFetcher: Options.CRL is used instead of a Fetcher of the
// ocspfetch Fetcher's own: its Store keeps the CRL, so that after a
// restart with the CRL host down the revocation is still known; Close
// leaves it open, as the caller's.
func TestCRLGivenFetcher(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "stored.example")
	p.ossl.Revoke(leaf)
	p.publish(time.Time{}, time.Time{})
	dir := t.TempDir()
	newCRL := func() *crlfetch.Fetcher {
		store, err := crlfetch.NewDirStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := crlfetch.New(crlfetch.Options{LeafOnly: true, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cf.Close() })
		return cf
	}
	cf := newCRL()
	f, _ := newFetcher(t, Options{CRL: cf})
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Staple: %v", err)
	}
	if crls := cf.CRLs(); len(crls) != 1 || !crls[0].Held || crls[0].Source != p.url() {
		t.Fatalf("the given Fetcher's CRLs: %+v", crls)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cf.Check(t.Context(), nil); errors.Is(err, crlfetch.ErrClosed) {
		t.Fatal("ocspfetch's Close closed the given crlfetch.Fetcher")
	}
	// A restart while the CRL host is down: the Store's CRL, verified
	// again, still says revoked.
	testenv.WaitFor(t, func() bool { return len(mustGlob(t, dir)) == 1 })
	p.host.Close()
	g, _ := newFetcher(t, Options{CRL: newCRL()})
	if _, err := g.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the restart: %v", err)
	}
}

// TestCRLPrefetch: Prefetch reads the CRL of a certificate without a
// responder before the first handshake, and says what it says; without
// the certificate's issuer (given, or at a caIssuers URL) the CRL cannot
// be verified, and Prefetch says ErrNoIssuer.
func TestCRLPrefetch(t *testing.T) {
	p := newCRLPKI(t)
	good, bad := p.leaf(t, "good.example"), p.leaf(t, "revoked.example")
	p.ossl.Revoke(bad)
	p.publish(time.Time{}, time.Time{})
	f, _ := newFetcher(t, Options{})
	alone := p.leaf(t, "alone.example").TLSCertificate(false) // no issuer, and no caIssuers URL
	res := f.Prefetch(t.Context(), good.TLSCertificate(true), bad.TLSCertificate(true), alone)
	if res[0].Staple != nil || !errors.Is(res[0].Err, ErrNoResponder) || errors.Is(res[0].Err, ErrRevoked) {
		t.Errorf("good: %+v", res[0])
	}
	if res[1].Staple != nil || !errors.Is(res[1].Err, ErrRevoked) {
		t.Errorf("revoked: %+v", res[1])
	}
	if res[2].Staple != nil || !errors.Is(res[2].Err, ErrNoIssuer) {
		t.Errorf("without its issuer: %+v", res[2])
	}
	if cs := certStatus(t, f, bad); cs.CRL == nil || cs.CRL.Status != ocsp.Revoked {
		t.Errorf("status after Prefetch: %+v", cs)
	}
	if n := p.host.Hits("/ca.crl"); n != 1 {
		t.Errorf("CRL fetched %d times", n)
	}
}

// TestCRLCloseEndsGoroutines: Close ends the Fetcher's own crlfetch.Fetcher
// with the rest, a check waiting for a CRL host that does not answer
// included: the goroutines are back to what they were.
func TestCRLCloseEndsGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := newCRLPKI(t)
	held, hung := p.leaf(t, "held.example"), p.ca.Issue(t, testpki.LeafOptions{
		DNSNames: []string{"hung.example"}, CRLDistributionPoints: []string{p.host.URL + "/hung.crl"}})
	p.publish(time.Time{}, time.Time{})
	release, asked := make(chan struct{}), make(chan struct{}, 1)
	p.host.Handle("/hung.crl", func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		<-release
	})
	f, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Staple(t.Context(), held.DER, p.ca.DER); !errors.Is(err, ErrNoResponder) {
		t.Fatalf("held: %v", err)
	}
	request(t, f, hung.DER, p.ca.DER)
	within(t, asked) // its check waits for the first CRL
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(release)
	p.host.Close()
	goleak.VerifyNone(t, before)
}

// TestCRLLogging: without a Logger, a revocation learned from a CRL is an
// event and nothing is written anywhere (slog.Default included); with
// one, it is a warning.
func TestCRLLogging(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "revoked.example")
	p.ossl.Revoke(leaf)
	p.publish(time.Time{}, time.Time{})
	var buf bytes.Buffer
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(newBufLogger(&buf, &mu))
	defer slog.SetDefault(prev)
	f, rec := newFetcher(t, Options{})
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	f.Close()
	mu.Lock()
	if buf.Len() != 0 {
		t.Errorf("a Fetcher without a Logger logged:\n%s", buf.String())
	}
	mu.Unlock()
	if _, ok := rec.find(EventRevoked); !ok {
		t.Fatalf("no event: %v", rec.kinds())
	}

	var logged bytes.Buffer
	g, _ := newFetcher(t, Options{Logger: newBufLogger(&logged, &mu)})
	if _, err := g.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "level=WARN msg=\"ocspfetch: revoked\"") {
		t.Errorf("no warning for the revocation:\n%s", logged.String())
	}
}

// TestCRLMetrics: the Fetcher's own crlfetch.Fetcher, made only when a
// certificate needs a CRL, reports to the Fetcher's MeterProvider (the CRL
// fetched, its entries), and a failed reading is a fetch failure of reason
// crl_unavailable.
func TestCRLMetrics(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "revoked.example")
	p.ossl.Revoke(leaf)
	p.publish(time.Time{}, time.Time{})
	// Another CA's certificate, whose CRL is not there (the CA's CRL held
	// would speak for it too, wherever it came from).
	down := testpki.NewCA(t, "another CA").Issue(t, testpki.LeafOptions{DNSNames: []string{"down.example"},
		CRLDistributionPoints: []string{p.host.URL + "/missing.crl"}})
	r := metrictest.New(t)
	f, _ := newFetcher(t, Options{MeterProvider: r.Provider})
	if s := r.Collect(t); s.Has("tlsemit.crl.fetches") || s.Has("tlsemit.crl.checks") {
		t.Fatalf("CRL metrics before any certificate needed a CRL: %v", s.Names())
	}
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	if _, err := f.Staple(context.Background(), down.DER, down.Issuer.DER); !errors.Is(err, ErrCRLUnavailable) {
		t.Fatal(err)
	}
	s := r.Collect(t)
	if n := s.Int("tlsemit.crl.fetches", "tlsemit.crl.fetch.outcome=new"); n != 1 {
		t.Errorf("tlsemit.crl.fetches new = %d:\n%s", n, s.Points("tlsemit.crl.fetches"))
	}
	if v, ok := s.Gauge("tlsemit.crl.entries", "tlsemit.crl.source="+p.url()); !ok || v != 1 {
		t.Errorf("tlsemit.crl.entries = %v, %v", v, ok)
	}
	if n := s.Int("tlsemit.ocsp.fetch.failures", "error.type=crl_unavailable"); n != 1 {
		t.Errorf("failures crl_unavailable = %d:\n%s", n, s.Points("tlsemit.ocsp.fetch.failures"))
	}
}

func mustGlob(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "[0-9a-f]*.crl")) // not a temporary file being written
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// within returns what ch gives, failing the test if nothing comes within
// 20 s (it would otherwise hang).
func within[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("the awaited event never came")
		var zero T
		return zero
	}
}

// callStore is a LockingStore (a fleet's, say) that counts the calls made
// to it.
type callStore struct {
	LockingStore
	calls atomic.Int64
}

func (s *callStore) Load(ctx context.Context, key string) ([]byte, error) {
	s.calls.Add(1)
	return s.LockingStore.Load(ctx, key)
}

func (s *callStore) Store(ctx context.Context, key string, der []byte, exp time.Time) error {
	s.calls.Add(1)
	return s.LockingStore.Store(ctx, key, der, exp)
}

func (s *callStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	s.calls.Add(1)
	return s.LockingStore.Lock(ctx, key, ttl)
}

// TestCRLNotInStore: a certificate whose revocation comes from its CRL
// costs the Fetcher's Store (a fleet's LockingStore) nothing: CRLs are not
// shared through it; each Fetcher's crlfetch.Fetcher fetches them.
func TestCRLNotInStore(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "fleet.example")
	p.publish(time.Time{}, time.Time{})
	store := &callStore{LockingStore: NewMemoryStore()}
	f, _ := newFetcher(t, Options{Store: store})
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrNoResponder) {
		t.Fatal(err)
	}
	refreshNow(t, f, time.Now().Add(time.Hour))
	if n := store.calls.Load(); n != 0 {
		t.Fatalf("%d Store calls for a certificate read from its CRL", n)
	}
}

// TestCRLExpired: once the CRL held is past its nextUpdate (no newer one
// got), the certificate's revocation is unknown again: the reading fails
// with ErrCRLUnavailable wrapping crlfetch.ErrExpired, and the CRL's
// answer is no longer shown.
func TestCRLExpired(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.leaf(t, "expiring.example")
	p.publish(time.Time{}, time.Time{}) // valid a day
	clk := newClock()
	cf, err := crlfetch.New(crlfetch.Options{LeafOnly: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	f, rec := newFetcher(t, Options{CRL: cf, Now: clk.Now})
	if _, err := f.Staple(t.Context(), leaf.DER, p.ca.DER); !errors.Is(err, ErrNoResponder) {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	if n := refreshNow(t, f, clk.Now()); n != 1 {
		t.Fatalf("%d readings", n)
	}
	cs := certStatus(t, f, leaf)
	if cs.CRL != nil || !errors.Is(cs.LastError, ErrCRLUnavailable) || !errors.Is(cs.LastError, crlfetch.ErrExpired) {
		t.Fatalf("past the CRL's nextUpdate: %+v", cs)
	}
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, crlfetch.ErrExpired) {
		t.Fatalf("event %+v", ev)
	}
}
