package ocspfetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/internal/closewait"
	"github.com/tlsemit/tlsemit/internal/httpfetch"
	"github.com/tlsemit/tlsemit/internal/userhook"
)

// Fetcher obtains, verifies, caches and refreshes OCSP staples for the
// certificates it is asked about. Create one with New, share it among
// servers and goroutines, and Close it when done.
type Fetcher struct {
	opts      Options
	rules     httpfetch.Rules // of every request: address, scheme, redirects, size
	client    *http.Client
	ownClient bool // client is the Fetcher's own: Close closes its idle connections

	certs *certMap
	sched scheduler

	ctx      context.Context // canceled by Close
	cancel   context.CancelFunc
	closed   atomic.Bool
	done     chan struct{} // closed by Close
	wake     chan struct{}
	loopDone chan struct{}

	fetches closewait.Group // the goroutines that run fetches; none starts once Close begins

	stats counters
	met   *metrics
	guard userhook.Guard // for OnEvent, the Logger and the Store

	crlMu  sync.Mutex
	ownCRL *crlfetch.Fetcher // made on first use when Options.CRL is nil
}

// entry is one certificate's state.
type entry struct {
	id         string // the certificate's DER
	cert       *x509.Certificate
	serial     string
	subject    string
	url        string
	mustStaple bool
	unfetched  bool                 // never fetched (no responder, or not a certificate): only swept
	crl        bool                 // no responder, but a CRL: its revocation comes from its CRL
	attrs      metric.ObserveOption // the certificate's gauges' attributes; nil when it does not parse

	// cur is what handshakes get; nil until the first answer.
	cur  atomic.Pointer[state]
	used atomic.Bool // set by requests, cleared by the scheduler
	gone atomic.Bool // removed from the map

	// Owned by the scheduler (under its lock).
	due   time.Time
	index int // in the heap; -1 when not in it

	mu           sync.Mutex
	flight       *flight
	issuer       *x509.Certificate
	hasID        bool
	cid          certID
	key          string
	reqDER       []byte
	maxStaple    int       // the largest staple that fits beside the chain
	latest       time.Time // the latest ThisUpdate accepted: answers never go back before it
	lastRequest  time.Time // the last request to the responder
	failures     int
	lockFailures int       // the fleet's lock could not be taken, while a staple is served
	retryAt      time.Time // no request before: a backoff, or the refresh floor
	lastUsed     time.Time
	lastErr      error
	crlAns       *CRLAnswer // what its CRL says (crl); nil until known, or after a failure
	crlSeen      bool       // an answer came from its CRL once
}

// state is an immutable answer for one certificate, valid on the fast path
// while Now < until.
type state struct {
	der     []byte // what to staple; nil for nothing
	until   int64  // Options.Now UnixNano
	failErr error  // with der nil: what FailClosed reports (nil: not a failure)
	revoked bool   // der is a Revoked answer (StapleRevoked)
	staple  *Staple
	err     error // what Staple returns with staple
}

const forever = math.MaxInt64

// idleTimeout: a certificate no handshake asked about for this long is
// forgotten when the scheduler next looks at it (a refresh, a retry, or a
// daily check for certificates it never fetches), so that a replaced
// certificate neither keeps its responder busy nor stays in memory.
const idleTimeout = 24 * time.Hour

// Staple is a verified OCSP response.
type Staple struct {
	// DER is the response as stapled: what the responder signed, byte for
	// byte, with only the delegated signer's certificate (if one signed it)
	// in its certs field.
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
	f, err := newFetcherWith(opts)
	if err != nil {
		return nil, err
	}
	f.loopDone = make(chan struct{})
	go f.loop()
	return f, nil
}

// newFetcherWith is New without the background goroutine: tests drive the
// scheduler with runDue.
func newFetcherWith(opts Options) (*Fetcher, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	f := &Fetcher{
		opts:     opts,
		certs:    newCertMap(),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
	}
	close(f.loopDone) // no loop: New starts one
	f.stats.byReason = make(map[error]int64)
	f.guard = userhook.Guard{Name: "ocspfetch", Logger: opts.Logger, Panics: &f.stats.panics,
		StoreTimeout: opts.StoreTimeout, ErrStore: ErrStore, ErrPanic: ErrPanic, Answers: []error{ErrCacheMiss, ErrLocked}}
	f.rules = httpfetch.Rules{RefuseInternal: opts.RefuseInternalAddresses, MaxRedirects: MaxRedirects, MaxSize: opts.MaxResponseSize,
		ErrRefused: ErrRefusedAddress, ErrScheme: ErrUnsupportedScheme, ErrRedirects: ErrTooManyRedirects, ErrTooLarge: ErrResponseTooLarge}
	if f.client, f.ownClient = f.rules.Client(opts.HTTPClient); f.ownClient {
		f.client.Timeout = 15 * time.Second
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.met = newMetrics(opts.MeterProvider, f)
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
	f.request(nil, cert, issuer, cb)
}

// request is OCSPRequest, whose wait for a fetch also ends when gone is
// closed.
func (f *Fetcher) request(gone <-chan struct{}, cert, issuer []byte, cb func(err error, resp []byte)) {
	if e := f.certs.fast(cert); e != nil {
		if st := e.cur.Load(); st != nil && f.opts.Now().UnixNano() < st.until && !f.closed.Load() {
			if !e.used.Load() {
				e.used.Store(true)
			}
			f.answer(st, cb)
			return
		}
	}
	f.slow(gone, cert, issuer, cb)
}

// answer calls cb with st at once, counting a hit or an unstapled answer.
func (f *Fetcher) answer(st *state, cb func(error, []byte)) {
	if st.der != nil {
		if st.revoked {
			f.stats.revokedHits.Add(1)
		} else {
			f.stats.hits.Add(1)
		}
		cb(nil, st.der)
		return
	}
	f.stats.unstapled.Add(1)
	if f.opts.FailClosed && st.failErr != nil {
		cb(st.failErr, nil)
		return
	}
	cb(nil, nil)
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

// slow is OCSPRequest without a usable answer in the read-only map. It
// also stops waiting when gone is closed (the handshake's context ended).
func (f *Fetcher) slow(gone <-chan struct{}, cert, issuer []byte, cb func(error, []byte)) {
	if f.closed.Load() {
		f.stats.unstapled.Add(1)
		f.unstapled(ErrClosed, cb)
		return
	}
	e := f.entryFor(cert, issuer)
	e.used.Store(true)
	now := f.now()
	if st := e.cur.Load(); st != nil {
		if now.UnixNano() < st.until {
			f.answer(st, cb) // filled in meanwhile, or not yet in the read-only map
			return
		}
		f.expire(e, st)
	}
	if err, ok := e.backingOff(now); ok {
		f.stats.unstapled.Add(1)
		f.unstapled(err, cb)
		return
	}
	f.stats.misses.Add(1)
	fl := f.startFlight(e, false)
	t := time.NewTimer(max(f.opts.HandshakeBudget, 0))
	defer t.Stop()
	select {
	case <-fl.answered:
		st := fl.st
		if st != nil && f.now().UnixNano() < st.until {
			switch {
			case st.der == nil:
				f.stats.missNone.Add(1)
				f.unstapled(st.failErr, cb)
			case st.revoked:
				f.stats.missRevoked.Add(1)
				cb(nil, st.der)
			default:
				f.stats.missGood.Add(1)
				cb(nil, st.der)
			}
			return
		}
		err := fl.err
		if err == nil && st != nil {
			err = st.err
		}
		f.stats.missNone.Add(1)
		f.unstapled(err, cb)
	case <-t.C:
		err := newErr(ErrBudgetExceeded, "after "+f.opts.HandshakeBudget.String(), nil)
		f.stats.budget.Add(1)
		f.stats.missNone.Add(1)
		f.emit(e, Event{Kind: EventBudgetExceeded, Err: err})
		if e.mustStaple {
			f.mustStapleMissing(e, err)
		}
		f.unstapled(err, cb)
	case <-f.done:
		f.stats.missNone.Add(1)
		f.unstapled(ErrClosed, cb)
	case <-gone:
		f.stats.missNone.Add(1)
		cb(nil, nil) // nobody is left to refuse
	}
}

// Staple returns a verified response for cert (DER) issued by issuer (DER,
// or nil to fetch it from the certificate's caIssuers URL), from the cache
// or, if there is no fresh one, from the Store or the responder, waiting as
// long as ctx allows. A Good response comes with a nil error. A verified
// Revoked response comes with an error wrapping ErrRevoked, an Unknown one
// with ErrUnknownStatus: check the error before stapling. Without a
// verified response the Staple is nil and the error says why
// (ErrNoResponder, …); after a failure, until the retry time, the failure
// is returned at once.
//
// For a certificate that names no responder but a CRL distribution point
// (see Options.CRL), Staple waits, as long as ctx allows, for the first
// reading of its CRL; the Staple is nil and the error wraps ErrNoResponder
// when the CRL says good (there is nothing to staple), ErrRevoked when it
// lists the certificate, ErrCRLUnavailable when it cannot be read.
func (f *Fetcher) Staple(ctx context.Context, cert, issuer []byte) (*Staple, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	e := f.entryFor(cert, issuer)
	e.used.Store(true)
	if e.crl {
		return nil, f.crlStaple(ctx, e)
	}
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
	fl := f.startFlight(e, false)
	select {
	case <-fl.answered:
		if fl.err != nil {
			return nil, fl.err
		}
		st := fl.st
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

// backingOff reports the last failure while no request may be made.
func (e *entry) backingOff(now time.Time) (error, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.retryAt) {
		return e.lastErr, true
	}
	return nil, false
}

// expire retires st, whose time is over, reporting a staple that was being
// served and is no more. Until a request is allowed again, handshakes get
// the failure from the fast path.
func (f *Fetcher) expire(e *entry, st *state) {
	if st.der == nil {
		return
	}
	err := newErr(ErrExpired, "cached staple reached its end of service without a successful refresh", nil)
	e.mu.Lock()
	swapped := e.cur.CompareAndSwap(st, &state{until: e.retryAt.UnixNano(), err: err, failErr: err})
	if swapped {
		e.lastErr = err
	}
	e.mu.Unlock()
	if swapped {
		f.emit(e, Event{Kind: EventExpired, Err: err, ThisUpdate: st.staple.ThisUpdate, NextUpdate: st.staple.NextUpdate})
		if e.mustStaple {
			f.mustStapleMissing(e, err)
		}
	}
}

// entryFor returns the entry of certDER, creating it on first sight.
func (f *Fetcher) entryFor(certDER, issuerDER []byte) *entry {
	if e := f.certs.get(certDER); e != nil {
		f.offerIssuer(e, issuerDER)
		return e
	}
	e, evs := f.newEntry(certDER, issuerDER)
	got, added := f.certs.add(e)
	if !added {
		f.offerIssuer(got, issuerDER)
		return got
	}
	// Every entry is scheduled, if only to be swept when idle; a fetch
	// reschedules it for its refresh. A certificate whose revocation comes
	// from its CRL is checked at once, in the background.
	due := f.now().Add(idleTimeout)
	if e.crl {
		due = f.now()
	}
	f.schedule(e, due)
	for _, ev := range evs {
		if ev.Kind == EventMustStapleMissing {
			f.stats.mustStaple.Add(1)
		}
		f.emit(e, ev)
	}
	return e
}

// newEntry parses a certificate. Certificates that can never be stapled
// (unparseable, no responder) get a permanent state at once, so later
// handshakes answer from the fast path.
func (f *Fetcher) newEntry(certDER, issuerDER []byte) (*entry, []Event) {
	e := &entry{id: string(certDER), lastUsed: f.now(), index: -1}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		err = newErr(ErrBadCertificate, "", err)
		e.unfetched = true
		e.cur.Store(&state{until: forever, err: err, failErr: err})
		return e, []Event{{Kind: EventFailed, Err: err}}
	}
	e.cert = cert
	e.serial = strings.ToUpper(cert.SerialNumber.Text(16))
	e.subject = cert.Subject.String()
	e.attrs = certAttrs(cert, e.serial)
	e.mustStaple = MustStaple(cert)
	e.url, err = ResponderURL(cert)
	if err != nil {
		ev := []Event{{Kind: EventNoResponder, Err: err}}
		if len(crlURLs(cert)) > 0 {
			// Nothing to staple, ever: handshakes get that at once, while
			// the revocation is learned from the CRL in the background.
			e.crl = true
			e.cur.Store(&state{until: forever})
			f.offerIssuer(e, issuerDER)
		} else {
			e.unfetched = true
			e.cur.Store(&state{until: forever, err: err})
		}
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

// Close stops the background refreshes, cancels fetches in flight, closes
// the idle connections of the Fetcher's own HTTP client and waits for every
// goroutine the Fetcher started. Afterwards OCSPRequest staples nothing
// (FailClosed: fails with ErrClosed) and Staple returns ErrClosed.
//
// Close returns within max(StoreTimeout, 1 s) even if user code does not
// return: a Store call (or a custom HTTP transport, or OnEvent) still
// running then is abandoned, to end whenever that code returns, and Close
// says so with an error wrapping ErrStore (ErrUnreachable for a fetch).
// Close is idempotent.
func (f *Fetcher) Close() error {
	if f.closed.Swap(true) {
		<-f.loopDone
		return nil
	}
	f.fetches.Close()
	f.cancel()
	close(f.done)
	f.met.reg.Unregister()
	<-f.loopDone
	crlClosed := make(chan error, 1)
	go func() { crlClosed <- f.closeCRL() }() // bounded as waitIdle is, alongside it
	err := f.waitIdle(max(f.opts.StoreTimeout, time.Second))
	if cerr := <-crlClosed; err == nil {
		err = cerr
	}
	if f.ownClient {
		f.client.CloseIdleConnections()
	}
	return err
}

// waitIdle waits at most d for the fetches and Store calls to end.
func (f *Fetcher) waitIdle(d time.Duration) error {
	deadline := time.Now().Add(d)
	fetches, calls := f.fetches.Wait(deadline), f.guard.Calls.Wait(deadline)
	switch {
	case calls > 0:
		return newErr(ErrStore, fmt.Sprintf("Close: %d Store calls still running after %v, abandoned", calls, d), nil)
	case fetches > 0:
		return newErr(ErrUnreachable, fmt.Sprintf("Close: %d fetches still running after %v (an HTTP transport or OnEvent that does not return), abandoned", fetches, d), nil)
	}
	return nil
}
