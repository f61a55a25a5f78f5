package crlfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/internal/closewait"
	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/httpfetch"
	"github.com/tlsemit/tlsemit/internal/userhook"
)

// Fetcher checks verified certificate chains against the CRLs of their
// issuers, which it fetches, verifies, keeps and refreshes. Create one
// with New, share it among servers and goroutines, and Close it when done.
type Fetcher struct {
	opts   Options
	policy crl.Policy
	get    *httpfetch.Getter

	// mu guards sources and the rebuilding of view; handshakes read view
	// without it.
	mu      sync.Mutex
	sources map[string]*source
	view    atomic.Pointer[view]

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	closed atomic.Bool
	loops  closewait.Group // one per source

	stats counters
	met   *metrics
	guard userhook.Guard // for OnEvent, the Logger and the Store
}

// view is what a check reads: immutable, replaced whenever a source comes
// or goes or a CRL is swapped in, so that a handshake never waits for a
// refresh.
type view struct {
	byURL    map[string]*source    // every URL source, by URL
	byIssuer map[string][]*crl.CRL // the CRLs held, by issuer Name (DER)
}

// maxURLSources bounds the distribution points the Fetcher follows at
// once (besides Options.Sources): a CA could otherwise make it hold a CRL
// per certificate. A certificate whose distribution point is over the
// bound gets UNABLE_TO_GET_CRL, unless a CRL held covers it. (A variable
// for tests.)
var maxURLSources = 256

const (
	// maxURLsPerCert is how many http(s) distribution points of one
	// certificate are followed (mirrors, usually).
	maxURLsPerCert = 4
	// idleTimeout: a distribution point no check has needed for a day is
	// forgotten, CRL and all.
	idleTimeout = 24 * time.Hour
)

// New returns a Fetcher. It reads the file Sources at once (New fails if
// one cannot be read or verified, as Node's createSecureContext throws on
// a bad crl) and starts fetching the URL Sources in the background; CRLs
// of distribution points are fetched when a certificate that names them
// is first checked. Close stops it.
func New(opts Options) (*Fetcher, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	f := &Fetcher{
		opts:    opts,
		policy:  crl.Policy{Skew: opts.ClockSkew, Grace: opts.Grace, LeafOnly: opts.LeafOnly},
		sources: map[string]*source{},
		get: httpfetch.New(opts.HTTPClient, httpfetch.Rules{RefuseInternal: opts.RefuseInternalAddresses,
			MaxSize: opts.MaxSize, MaxRedirects: MaxRedirects}),
	}
	f.guard = userhook.Guard{Name: "crlfetch", Logger: opts.Logger, Panics: &f.stats.panics,
		StoreTimeout: opts.StoreTimeout, ErrStore: ErrStore, ErrPanic: ErrPanic, Answers: []error{fs.ErrNotExist}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.view.Store(&view{})
	var files []*source
	var issuers []*x509.Certificate
	for _, src := range opts.Sources {
		issuers = append(issuers, src.Issuer)
		key := src.URL
		if src.File != "" {
			key = src.File
		}
		s := f.sources[key]
		if s == nil {
			s = newSource(key, src.URL, src.File, true, f.now())
			f.sources[key] = s
			if src.File != "" {
				files = append(files, s)
			}
		}
		s.addIssuer(src.Issuer)
	}
	// A trust anchor that is not self-issued (an intermediate CA of
	// ClientCAs) is checked on up to its root through the Sources'
	// issuers: the Fetcher does not see ClientCAs.
	f.policy.Anchors = crl.NewAnchors(issuers)
	for _, s := range files {
		if err := f.pollFile(s, f.now()); err != nil {
			f.cancel()
			return nil, fmt.Errorf("crlfetch: Source %s: %w", s.key, err)
		}
	}
	f.met = newMetrics(opts.MeterProvider, f)
	f.mu.Lock()
	f.rebuildLocked()
	for _, s := range f.sources {
		f.start(s)
	}
	f.mu.Unlock()
	return f, nil
}

func (f *Fetcher) now() time.Time { return f.opts.Now() }

// VerifyConnection has the signature of crypto/tls's Config.VerifyConnection,
// so it serves any Go TLS server (net/http's included), with ClientAuth set
// to RequireAndVerifyClientCert or VerifyClientCertIfGiven: it checks the
// client's verified chains (ConnectionState.VerifiedChains) as Check does.
// A connection without a client certificate passes (ClientAuth decides
// whether one is required); one with a certificate that crypto/tls did
// not verify is refused with ErrNotVerified.
//
// The error it returns carries Node's code (CERT_REVOKED,
// UNABLE_TO_GET_CRL, CRL_HAS_EXPIRED, CRL_SIGNATURE_FAILURE,
// CRL_NOT_YET_VALID) through a method Code() string; crypto/tls returns it
// from the server's Handshake after sending a bad_certificate alert.
func (f *Fetcher) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		err := newErr(ErrNotVerified, "", nil)
		f.stats.refused[codeIndex(err)].Add(1)
		f.emit(Event{Kind: EventRefused, Err: err})
		return err
	}
	return f.check(f.ctx, cs.VerifiedChains)
}

// Check checks verified chains (leaf first, trust anchor last, as
// x509.Certificate.Verify returns them) against their issuers' CRLs, with
// Node's semantics: every certificate of a chain is checked against the
// CRL of its issuer (the trust anchor against its own; an intermediate
// that ends the chain against its root's, the root found among the
// Sources' Issuers, else UNABLE_TO_GET_CRL), unless Options.LeafOnly; the
// CRLs come from each certificate's CRL distribution points (http and
// https) and from Options.Sources. One chain that passes is enough. It
// returns nil, or an error wrapping ErrRevoked, ErrNoCRL, ErrExpired,
// ErrSignature or ErrNotYetValid whose Code method gives Node's code (an
// *Error: Cert and Depth say which certificate; depths go on up from an
// intermediate that ends the chain to its root).
//
// A check waits for the network only for an issuer whose CRL has never
// been obtained, at most FirstWait; otherwise it answers from memory. If
// ctx ends while it waits, Check returns ctx's error (the fetch goes on).
func (f *Fetcher) Check(ctx context.Context, chains [][]*x509.Certificate) error {
	return f.check(ctx, chains)
}

func (f *Fetcher) check(ctx context.Context, chains [][]*x509.Certificate) error {
	if f.closed.Load() {
		return f.outcome(newErr(ErrClosed, "", nil))
	}
	now := f.now()
	v := f.view.Load()
	if f.pending(v, chains, now) {
		f.register(chains)
		f.waitFirst(ctx, f.view.Load(), chains)
		if err := ctx.Err(); err != nil && !f.closed.Load() {
			return err // the caller's, not an outage: neither counted nor reported
		}
		v, now = f.view.Load(), f.now()
	}
	err := f.policy.CheckChains(chains, now, func(cert, issuer *x509.Certificate) ([]*crl.CRL, error) {
		if crls := v.byIssuer[string(issuer.RawSubject)]; len(crls) > 0 {
			return crls, nil
		}
		return nil, f.why(v, cert, issuer)
	})
	return f.outcome(err)
}

// outcome counts and reports a check's result, applying FailOpen.
func (f *Fetcher) outcome(err error) error {
	if err == nil {
		f.stats.passed.Add(1)
		return nil
	}
	ev := Event{Kind: EventRefused, Err: err, Code: crl.Code(err)}
	var ce *crl.Error
	if errors.As(err, &ce) && ce.Cert != nil {
		ev.Issuer = ce.Cert.Issuer.String()
	}
	if f.opts.FailOpen && !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrNotVerified) {
		f.stats.failedOpen[codeIndex(err)].Add(1)
		ev.Kind = EventFailedOpen
		f.emit(ev)
		return nil
	}
	f.stats.refused[codeIndex(err)].Add(1)
	f.emit(ev)
	return err
}

// urls returns the http(s) distribution points of cert (crypto/x509
// parsed their fullName URIs), at most maxURLsPerCert; without allocating
// when they all are http(s).
func urls(cert *x509.Certificate) []string {
	ds := cert.CRLDistributionPoints
	for _, u := range ds {
		if !isHTTP(u) {
			var out []string
			for _, u := range ds {
				if isHTTP(u) && len(out) < maxURLsPerCert {
					out = append(out, u)
				}
			}
			return out
		}
	}
	return ds[:min(len(ds), maxURLsPerCert)]
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// pending reports whether a distribution point of the certificates the
// chains' check needs (crl.Policy.Each) has no source yet, or one whose
// first fetch has not ended; it marks the sources it finds as used. It
// does not allocate.
func (f *Fetcher) pending(v *view, chains [][]*x509.Certificate, now time.Time) bool {
	pending := false
	for _, chain := range chains {
		f.policy.Each(chain, func(cert, _ *x509.Certificate) {
			for _, u := range urls(cert) {
				s := v.byURL[u]
				if s == nil {
					pending = true
					continue
				}
				s.touch(now)
				if !s.isReady() {
					pending = true
				}
			}
		})
	}
	return pending
}

// register creates the sources of the chains' distribution points that
// have none, and offers each source the issuer of the certificate that
// names it.
func (f *Fetcher) register(chains [][]*x509.Certificate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return
	}
	added := false
	for _, chain := range chains {
		f.policy.Each(chain, func(cert, issuer *x509.Certificate) {
			for _, u := range urls(cert) {
				s := f.sources[u]
				if s == nil {
					if f.urlSources() >= maxURLSources {
						continue
					}
					s = newSource(u, u, "", false, f.now())
					s.addIssuer(issuer) // before its first fetch
					f.sources[u] = s
					f.start(s)
					added = true
				}
				s.touch(f.now())
				s.addIssuer(issuer)
			}
		})
	}
	if added {
		f.rebuildLocked()
	}
}

func (f *Fetcher) urlSources() int {
	n := 0
	for _, s := range f.sources {
		if !s.explicit {
			n++
		}
	}
	return n
}

// waitFirst waits, at most FirstWait and while ctx lasts, for the first
// fetch of each of the chains' distribution points to end.
func (f *Fetcher) waitFirst(ctx context.Context, v *view, chains [][]*x509.Certificate) {
	if f.opts.FirstWait <= 0 {
		return
	}
	var waiting []*source
	for _, chain := range chains {
		f.policy.Each(chain, func(cert, _ *x509.Certificate) {
			for _, u := range urls(cert) {
				if s := v.byURL[u]; s != nil {
					waiting = append(waiting, s)
				}
			}
		})
	}
	t := time.NewTimer(f.opts.FirstWait)
	defer t.Stop()
	for _, s := range waiting {
		select {
		case <-s.ready:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-f.ctx.Done():
			return
		}
	}
}

// why says why no CRL is held for cert's issuer: the last failure of the
// sources that should have it.
func (f *Fetcher) why(v *view, cert, issuer *x509.Certificate) error {
	us := urls(cert)
	for _, u := range us {
		if s := v.byURL[u]; s != nil {
			if err := s.failure(); err != nil {
				return err
			}
		}
	}
	for _, u := range us {
		if s := v.byURL[u]; s != nil && !s.isReady() {
			return newErr(ErrFirstWait, fmt.Sprintf("%s still being fetched after %v", u, f.opts.FirstWait), nil)
		}
	}
	// Sources meant for the issuer's CRL: Sources, and distribution
	// points other certificates of the issuer named (the trust anchor's
	// CRL comes from its subordinates' distribution points).
	f.mu.Lock()
	var others []*source
	for _, s := range f.sources {
		if s.issuedBy(issuer) {
			others = append(others, s)
		}
	}
	f.mu.Unlock()
	for _, s := range others {
		if err := s.failure(); err != nil {
			return err
		}
	}
	switch {
	case len(us) > 0 || len(others) > 0:
		return nil
	case len(cert.CRLDistributionPoints) > 0:
		return fmt.Errorf("no http(s) CRL distribution point in the certificate (%s) and no Source for %s", strings.Join(cert.CRLDistributionPoints, ", "), issuer.Subject)
	}
	return fmt.Errorf("no CRL distribution point in the certificate and no Source for %s", issuer.Subject)
}

// rebuildLocked replaces the view; f.mu is held.
func (f *Fetcher) rebuildLocked() {
	v := &view{byURL: map[string]*source{}, byIssuer: map[string][]*crl.CRL{}}
	for _, s := range f.sources {
		if s.url != "" {
			v.byURL[s.url] = s
		}
		if h := s.cur.Load(); h != nil {
			k := string(h.crl.RawIssuer)
			v.byIssuer[k] = append(v.byIssuer[k], h.crl)
		}
	}
	f.view.Store(v)
}

// rebuild replaces the view.
func (f *Fetcher) rebuild() {
	f.mu.Lock()
	f.rebuildLocked()
	f.mu.Unlock()
}

// start runs s's loop; f.mu is held.
func (f *Fetcher) start(s *source) {
	f.loops.Go(func() { f.run(s) })
}

// remove forgets s, an idle distribution point.
func (f *Fetcher) remove(s *source) {
	f.mu.Lock()
	if f.sources[s.key] == s {
		delete(f.sources, s.key)
	}
	f.rebuildLocked()
	f.mu.Unlock()
	f.met.forget(s.key)
}

// Close stops the refreshes, cancels the fetches in flight, closes the idle
// connections of the Fetcher's own HTTP client and waits for the
// Fetcher's goroutines, at most max(StoreTimeout, 1 s) for Store calls
// or user code (OnEvent, the Logger, a custom HTTP transport) that does
// not return: those are abandoned, and Close says so with an error
// wrapping ErrStore. Afterwards checks fail with ErrClosed (pass with
// FailOpen). Close is idempotent.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	if f.closed.Swap(true) {
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	f.cancel()
	f.met.reg.Unregister()
	wait := max(f.opts.StoreTimeout, time.Second)
	deadline := time.Now().Add(wait)
	var err error
	if f.loops.Wait(deadline)+f.guard.Calls.Wait(deadline) > 0 {
		err = newErr(ErrStore, fmt.Sprintf("Close: Store calls or user code still running after %v, abandoned", wait), nil)
	}
	f.get.Close()
	return err
}
