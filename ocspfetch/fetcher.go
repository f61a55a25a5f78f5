package ocspfetch

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Fetcher obtains, verifies, caches and refreshes OCSP staples for the
// certificates it is asked about. Create one with New, share it among
// servers and goroutines, and Close it when done.
type Fetcher struct {
	opts   Options
	client *http.Client
	group  singleflight.Group

	// hot maps certificate DER (as a string) to its entry. It is replaced
	// whole on insert (copy on write), so the handshake path reads it with
	// one atomic load and a map lookup that does not allocate.
	hot atomic.Pointer[map[string]*entry]
	mu  sync.Mutex // serializes writers of hot

	ctx      context.Context
	cancel   context.CancelFunc
	closed   atomic.Bool
	lifeMu   sync.Mutex // orders Close against flights.Add
	flights  sync.WaitGroup
	done     chan struct{}
	wake     chan struct{}
	loopDone chan struct{}

	fetchTimeout time.Duration
	stats        counters
}

// entry is one certificate's state.
type entry struct {
	id         string // the certificate's DER
	cert       *x509.Certificate
	serial     string
	subject    string
	url        string
	mustStaple bool

	// cur is what handshakes get; nil until the first answer.
	cur  atomic.Pointer[state]
	used atomic.Bool // set by requests, cleared by the scheduler

	mu         sync.Mutex
	issuer     *x509.Certificate
	hasID      bool
	id2        certID
	key        string
	reqDER     []byte
	triedStore bool
	failures   int
	retryAt    time.Time
	refreshAt  time.Time // zero: nothing scheduled
	lastUsed   time.Time
	lastErr    error
}

// state is an immutable answer for one certificate, valid on the fast path
// while Now < until.
type state struct {
	der     []byte // what to staple; nil for nothing
	until   int64  // Options.Now UnixNano
	failErr error  // with der nil: what FailClosed reports (nil: not a failure)
	staple  *Staple
	err     error // what Staple returns with staple
}

const forever = math.MaxInt64

// idleTimeout: a certificate no handshake asked about for this long is
// forgotten at its next refresh instead of refreshed, so that a replaced
// certificate does not keep its responder busy forever.
const idleTimeout = 24 * time.Hour

// Staple is a verified OCSP response.
type Staple struct {
	// DER is the response, as stapled.
	DER []byte
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status int
	// ThisUpdate, ProducedAt and RevokedAt are the response's. NextUpdate
	// is the effective one (ThisUpdate+NoNextUpdateLifetime without it).
	ThisUpdate, NextUpdate, ProducedAt, RevokedAt time.Time
	// ServeUntil is when the Fetcher stops stapling it: NextUpdate minus
	// the smaller of ClockSkew and a tenth of its lifetime.
	ServeUntil time.Time
	// Key is the CertID cache key.
	Key string
}

// New returns a Fetcher using opts (see Options for the defaults). It
// starts one background goroutine for refreshes; Close stops it.
func New(opts Options) (*Fetcher, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	f := &Fetcher{
		opts:         opts,
		done:         make(chan struct{}),
		wake:         make(chan struct{}, 1),
		loopDone:     make(chan struct{}),
		fetchTimeout: fetchTimeout,
	}
	f.stats.byReason = make(map[error]int64)
	if opts.HTTPClient == nil {
		f.client = defaultClient(opts.RefuseInternalAddresses)
		f.client.CheckRedirect = f.checkRedirect
	} else {
		c := *opts.HTTPClient
		if c.CheckRedirect == nil {
			c.CheckRedirect = f.checkRedirect
		}
		f.client = &c
	}
	empty := make(map[string]*entry)
	f.hot.Store(&empty)
	f.ctx, f.cancel = context.WithCancel(context.Background())
	go f.loop()
	return f, nil
}

// now is Options.Now.
func (f *Fetcher) now() time.Time { return f.opts.Now() }

// OCSPRequest has the signature of a tlsserver 'OCSPRequest' listener:
// cert and issuer are DER (issuer may be nil), and cb must be called once.
//
// With a cached answer it calls cb at once, on the caller's goroutine,
// without network or allocation: cb(nil, staple) for a valid staple,
// cb(nil, nil) when there is nothing to staple. Without one it waits at most
// HandshakeBudget for a fetch that all concurrent callers share, and goes on
// unstapled if the answer is late; the fetch completes in the background.
// cb's error is non-nil only with FailClosed, when a certificate that has a
// responder has no valid staple; the handshake then fails.
func (f *Fetcher) OCSPRequest(cert, issuer []byte, cb func(err error, resp []byte)) {
	if e := (*f.hot.Load())[string(cert)]; e != nil {
		if st := e.cur.Load(); st != nil && f.opts.Now().UnixNano() < st.until && !f.closed.Load() {
			if !e.used.Load() {
				e.used.Store(true)
			}
			f.stats.hits.Add(1)
			f.serve(st, cb)
			return
		}
	}
	f.slow(cert, issuer, cb)
}

// serve answers cb from st.
func (f *Fetcher) serve(st *state, cb func(error, []byte)) {
	if st.der == nil && f.opts.FailClosed && st.failErr != nil {
		cb(st.failErr, nil)
		return
	}
	cb(nil, st.der)
}

// unstapled lets the handshake go on without a staple, or fails it with
// FailClosed when err is a failure.
func (f *Fetcher) unstapled(err error, cb func(error, []byte)) {
	if f.opts.FailClosed && err != nil && !errors.Is(err, ErrNoResponder) {
		cb(err, nil)
		return
	}
	cb(nil, nil)
}

// slow is OCSPRequest without a usable cached answer.
func (f *Fetcher) slow(cert, issuer []byte, cb func(error, []byte)) {
	if f.closed.Load() {
		f.unstapled(ErrClosed, cb)
		return
	}
	f.stats.misses.Add(1)
	e := f.entryFor(cert, issuer)
	e.used.Store(true)
	now := f.now()
	if st := e.cur.Load(); st != nil {
		if now.UnixNano() < st.until {
			f.serve(st, cb) // filled in meanwhile
			return
		}
		f.expire(e, st)
	}
	if err, ok := e.backingOff(now); ok {
		f.unstapled(err, cb)
		return
	}
	ch := f.startFlight(e, false)
	budget := f.opts.HandshakeBudget
	if budget < 0 {
		budget = 0
	}
	t := time.NewTimer(budget)
	defer t.Stop()
	select {
	case r := <-ch:
		st, _ := r.Val.(*state)
		if st != nil && f.now().UnixNano() < st.until {
			f.serve(st, cb)
			return
		}
		err := r.Err
		if err == nil && st != nil {
			err = st.err
		}
		f.unstapled(err, cb)
	case <-t.C:
		err := newErr(ErrBudgetExceeded, "after "+f.opts.HandshakeBudget.String(), nil)
		f.stats.budget.Add(1)
		f.emit(e, Event{Kind: EventBudgetExceeded, Err: err})
		if e.mustStaple {
			f.mustStapleMissing(e, err)
		}
		f.unstapled(err, cb)
	case <-f.done:
		f.unstapled(ErrClosed, cb)
	}
}

// Staple returns a verified response for cert (DER) issued by issuer (DER,
// or nil to fetch it from the certificate's caIssuers URL), from the cache
// or, if there is no fresh one, from the responder, waiting as long as ctx
// allows. A Good response comes with a nil error. A verified Revoked
// response comes with an error wrapping ErrRevoked, an Unknown one with
// ErrUnknownStatus: check the error before stapling. Without a verified
// response the Staple is nil and the error says why (ErrNoResponder, …);
// after a failure, until the retry time, the failure is returned at once.
func (f *Fetcher) Staple(ctx context.Context, cert, issuer []byte) (*Staple, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	e := f.entryFor(cert, issuer)
	e.used.Store(true)
	now := f.now()
	if st := e.cur.Load(); st != nil {
		if now.UnixNano() < st.until {
			return st.staple, st.err
		}
		f.expire(e, st)
	}
	if err, ok := e.backingOff(now); ok {
		return nil, err
	}
	select {
	case r := <-f.startFlight(e, false):
		if r.Err != nil {
			return nil, r.Err
		}
		st := r.Val.(*state)
		if f.now().UnixNano() < st.until {
			return st.staple, st.err
		}
		if st.err != nil {
			return nil, st.err
		}
		return nil, newErr(ErrExpired, "", nil)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.done:
		return nil, ErrClosed
	}
}

// backingOff reports the last failure while a retry is pending.
func (e *entry) backingOff(now time.Time) (error, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.retryAt) {
		return e.lastErr, true
	}
	return nil, false
}

// expire retires st, whose time is over, reporting a staple that was being
// served and is no more.
func (f *Fetcher) expire(e *entry, st *state) {
	if st.der == nil {
		return
	}
	err := newErr(ErrExpired, "cached staple reached its end of service without a successful refresh", nil)
	if e.cur.CompareAndSwap(st, &state{err: err, failErr: err}) {
		f.emit(e, Event{Kind: EventExpired, Err: err, ThisUpdate: st.staple.ThisUpdate, NextUpdate: st.staple.NextUpdate})
		if e.mustStaple {
			f.mustStapleMissing(e, err)
		}
	}
}

// entryFor returns the entry of certDER, creating it on first sight.
func (f *Fetcher) entryFor(certDER, issuerDER []byte) *entry {
	if e := (*f.hot.Load())[string(certDER)]; e != nil {
		f.offerIssuer(e, issuerDER)
		return e
	}
	f.mu.Lock()
	old := *f.hot.Load()
	if e := old[string(certDER)]; e != nil {
		f.mu.Unlock()
		f.offerIssuer(e, issuerDER)
		return e
	}
	e, ev := f.newEntry(certDER, issuerDER)
	m := make(map[string]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[e.id] = e
	f.hot.Store(&m)
	f.mu.Unlock()
	for _, x := range ev {
		if x.Kind == EventMustStapleMissing {
			f.stats.mustStaple.Add(1)
		}
		f.emit(e, x)
	}
	return e
}

// newEntry parses a certificate. Certificates that can never be stapled
// (unparseable, no responder) get a permanent state at once, so later
// handshakes answer from the fast path.
func (f *Fetcher) newEntry(certDER, issuerDER []byte) (*entry, []Event) {
	e := &entry{id: string(certDER), lastUsed: f.now()}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		err = newErr(ErrBadCertificate, "", err)
		e.cur.Store(&state{until: forever, err: err, failErr: err})
		return e, []Event{{Kind: EventFailed, Err: err}}
	}
	e.cert = cert
	e.serial = strings.ToUpper(cert.SerialNumber.Text(16))
	e.subject = cert.Subject.String()
	e.mustStaple = MustStaple(cert)
	e.url, err = ResponderURL(cert)
	if err != nil {
		e.cur.Store(&state{until: forever, err: err})
		ev := []Event{{Kind: EventNoResponder, Err: err}}
		if e.mustStaple {
			ev = append(ev, Event{Kind: EventMustStapleMissing, Err: err})
		}
		return e, ev
	}
	f.offerIssuer(e, issuerDER)
	return e, nil
}

// offerIssuer adopts issuerDER as e's issuer if e has none yet and it did
// sign the certificate.
func (f *Fetcher) offerIssuer(e *entry, issuerDER []byte) {
	if len(issuerDER) == 0 || e.cert == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.issuer != nil {
		return
	}
	iss, err := x509.ParseCertificate(issuerDER)
	if err != nil || e.cert.CheckSignatureFrom(iss) != nil {
		return
	}
	e.issuer = iss
	if errors.Is(e.lastErr, ErrNoIssuer) {
		// The failure was ours to fix: try again now.
		e.retryAt = time.Time{}
	}
}

// Stats returns a snapshot of the counters.
func (f *Fetcher) Stats() Stats {
	s := &f.stats
	out := Stats{
		Hits: s.hits.Load(), Misses: s.misses.Load(), Requests: s.requests.Load(),
		Fetched: s.fetched.Load(), Loaded: s.loaded.Load(), Failures: s.failures.Load(),
		Revoked: s.revoked.Load(), Unknown: s.unknown.Load(), BudgetExceeded: s.budget.Load(),
		MustStapleMissing: s.mustStaple.Load(), Certificates: len(*f.hot.Load()),
		FailuresByReason: make(map[error]int64),
	}
	s.mu.Lock()
	for k, v := range s.byReason {
		out.FailuresByReason[k] = v
	}
	out.LastError, out.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	return out
}

// Close stops the background refreshes, cancels fetches in flight and
// waits for every goroutine the Fetcher started. Afterwards OCSPRequest
// staples nothing (FailClosed: fails with ErrClosed) and Staple returns
// ErrClosed. Close is idempotent.
func (f *Fetcher) Close() error {
	f.lifeMu.Lock()
	if f.closed.Swap(true) {
		f.lifeMu.Unlock()
		<-f.loopDone
		return nil
	}
	f.lifeMu.Unlock()
	f.cancel()
	close(f.done)
	<-f.loopDone
	f.flights.Wait()
	return nil
}

// counters back Stats. hits sits alone on its cache line: it is the only
// one written on the handshake fast path.
type counters struct {
	hits atomic.Int64
	_    [56]byte

	misses, requests, fetched, loaded, failures atomic.Int64
	revoked, unknown, budget, mustStaple        atomic.Int64

	mu        sync.Mutex
	byReason  map[error]int64
	lastErr   error
	lastErrAt time.Time
}

// emit fills in e's identity and delivers ev to OnEvent and the logger.
func (f *Fetcher) emit(e *entry, ev Event) {
	ev.Serial, ev.Subject = e.serial, e.subject
	e.mu.Lock()
	ev.Key = e.key
	e.mu.Unlock()
	if ev.At.IsZero() {
		ev.At = f.now()
	}
	log := f.opts.Logger
	args := []any{"kind", ev.Kind.String(), "serial", ev.Serial, "subject", ev.Subject}
	if ev.Err != nil {
		args = append(args, "err", ev.Err.Error())
	}
	switch ev.Kind {
	case EventMustStapleMissing:
		log.Error("ocspfetch: Must-Staple certificate has no valid OCSP staple", args...)
	case EventFailed, EventExpired, EventRevoked, EventStoreError, EventUnknown:
		log.Warn("ocspfetch: "+ev.Kind.String(), args...)
	default:
		log.Debug("ocspfetch: "+ev.Kind.String(), args...)
	}
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(ev)
	}
}

func (f *Fetcher) mustStapleMissing(e *entry, err error) {
	f.stats.mustStaple.Add(1)
	f.emit(e, Event{Kind: EventMustStapleMissing, Err: err})
}
