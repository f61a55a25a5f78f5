package ocspfetch

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/backoff"
)

// flight is the one fetch in progress for an entry; every caller that
// needs its answer waits on answered.
type flight struct {
	answered chan struct{} // st and err are set
	done     chan struct{} // all of it is over, saving to the Store included
	st       *state        // the state handshakes get after it
	err      error         // ErrClosed when it never ran
}

// startFlight starts, or joins, the one fetch in flight for e. A cold
// flight (refresh false) first rechecks the cache and the retry time, so a
// caller that raced with a just-finished flight does not cause a second
// request.
func (f *Fetcher) startFlight(e *entry, refresh bool) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flight != nil {
		return e.flight
	}
	fl := &flight{answered: make(chan struct{}), done: make(chan struct{})}
	if !f.fetches.Go(func() { f.fly(e, fl, refresh) }) {
		fl.err = ErrClosed
		close(fl.answered)
		close(fl.done)
		return fl
	}
	e.flight = fl // fly clears it under e.mu, which is held here
	return fl
}

// fly runs a flight on a goroutine of its own. A panic (in the HTTP
// client's transport, say) fails this fetch only. Waiters are released as
// soon as the answer is installed; saving it to the Store comes after.
func (f *Fetcher) fly(e *entry, fl *flight, refresh bool) {
	ctx, cancel := context.WithTimeout(f.ctx, fetchTimeout)
	defer cancel()
	var after func()
	func() {
		defer func() {
			if v := recover(); v != nil {
				f.stats.panics.Add(1)
				fl.st = f.failed(e, newErr(ErrPanic, fmt.Sprint(v), nil))
			}
		}()
		fl.st, after = f.update(ctx, e, refresh)
	}()
	close(fl.answered)
	if after != nil {
		after()
	}
	e.mu.Lock()
	e.flight = nil
	e.mu.Unlock()
	close(fl.done)
}

// update obtains a new answer for e and installs it. It returns the state
// handshakes now get and, possibly, what remains to be done without them
// waiting (saving to the Store, releasing the fleet's lock). Flights for one
// entry never overlap.
func (f *Fetcher) update(ctx context.Context, e *entry, refresh bool) (*state, func()) {
	if e.crl {
		f.updateCRL(ctx, e, refresh)
		return e.cur.Load(), nil
	}
	now := f.now()
	if !refresh {
		if st := e.cur.Load(); st != nil && now.UnixNano() < st.until {
			return st, nil
		}
		if _, ok := e.backingOff(now); ok {
			return e.cur.Load(), nil
		}
	}
	if err := f.prepare(ctx, e); err != nil {
		return f.failed(e, err), nil
	}
	// Another Fetcher, or an earlier run, may have a fresher answer.
	if st := f.fromStore(ctx, e, false); st != nil {
		return st, nil
	}
	unlock, st, lockFailed := f.lockOrWait(ctx, e)
	if st != nil {
		return st, nil
	}
	if lockFailed {
		if st := f.shareLater(e, now); st != nil {
			return st, nil
		}
	}
	// Saving and unlocking are not cut short by Close, which waits for
	// them (StoreTimeout bounds them).
	release := func() {
		if unlock != nil {
			f.storeDo(context.Background(), e, "unlock", unlock)
		}
	}
	// A panic from here on (a custom HTTP transport's) must not keep the
	// fleet's lock until it lapses: every member would wait for it.
	defer func() {
		if v := recover(); v != nil {
			release()
			panic(v)
		}
	}()
	e.mu.Lock()
	e.lastRequest = f.now()
	e.mu.Unlock()
	sent := time.Now()
	der, err := f.postOCSP(ctx, e.url, e.reqDER)
	took := time.Since(sent)
	if err != nil {
		f.met.request(took, 0, err)
		return f.failed(e, err), release
	}
	c, err := f.check(e, der)
	if err != nil {
		f.met.request(took, 0, err)
		return f.failed(e, err), release
	}
	f.met.request(took, c.resp.Status, nil)
	switch e.compare(c) {
	case -1:
		return f.failed(e, newErr(ErrOlderResponse, "thisUpdate "+c.resp.ThisUpdate.UTC().Format(time.RFC3339), nil)), release
	case 0:
		return f.noNews(e, c), release
	}
	kind := EventFetched
	if cur := e.cur.Load(); cur != nil && cur.staple != nil {
		kind = EventRefreshed
	}
	st = f.accept(e, c, kind)
	if st == nil {
		// Valid but too close to its NextUpdate to be worth serving.
		return f.failed(e, newErr(ErrExpired, "response ends within the clock skew margin", nil)), release
	}
	return st, func() {
		f.storeDo(context.Background(), e, "Store", func(ctx context.Context) error { return f.opts.Store.Store(ctx, e.key, c.der, c.next) })
		release()
	}
}

// prepare finds e's issuer (from the caIssuers URL if none was given) and
// builds its CertID and request, once.
func (f *Fetcher) prepare(ctx context.Context, e *entry) error {
	e.mu.Lock()
	hasID := e.hasID
	e.mu.Unlock()
	if hasID {
		return nil
	}
	issuer, err := f.issuerOf(ctx, e)
	if err != nil {
		return err
	}
	id, err := newCertID(f.opts.CertIDHash, e.cert, issuer)
	if err != nil {
		return err
	}
	req, err := ocsp.CreateRequest(e.cert, issuer, &ocsp.RequestOptions{Hash: f.opts.CertIDHash})
	if err != nil {
		return newErr(ErrBadCertificate, "creating request", err)
	}
	e.mu.Lock()
	e.issuer, e.cid, e.key, e.reqDER, e.hasID = issuer, id, id.key(), req, true
	e.maxStaple = maxStapleSize(len(e.cert.Raw), len(issuer.Raw))
	e.mu.Unlock()
	return nil
}

// issuerOf returns e's issuer: the one given, else the one its caIssuers
// URL serves.
func (f *Fetcher) issuerOf(ctx context.Context, e *entry) (*x509.Certificate, error) {
	e.mu.Lock()
	issuer := e.issuer
	e.mu.Unlock()
	if issuer != nil {
		return issuer, nil
	}
	issuer, err := f.fetchIssuer(ctx, e.cert)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.issuer == nil {
		e.issuer = issuer
	}
	e.mu.Unlock()
	return issuer, nil
}

// checked is a verified response that fits, not yet installed.
type checked struct {
	resp *ocsp.Response
	der  []byte // its minimal form: what is stapled and stored
	next time.Time
	verr error // ErrRevoked or ErrUnknownStatus for those answers
}

// check verifies der for e and applies the size rule to its minimal form.
func (f *Fetcher) check(e *entry, der []byte) (*checked, error) {
	resp, minimal, next, verr := verify(der, e.cert, e.issuer, e.cid, f.now(), f.opts.ClockSkew)
	if resp == nil {
		return nil, verr
	}
	if len(minimal) > e.maxStaple {
		return nil, newErr(ErrResponseTooLarge, fmt.Sprintf("%d bytes without its padding, more than the %d that fit beside the chain in a handshake", len(minimal), e.maxStaple), nil)
	}
	return &checked{resp: resp, der: minimal, next: next, verr: verr}, nil
}

// compare tells c's freshness against what e holds: 1 fresher (a later
// ThisUpdate; at the same one, a revocation of the Good answer served, or
// anything when that answer is no longer served), 0 the answer served, -1
// older. ThisUpdate never goes backwards.
func (e *entry) compare(c *checked) int {
	e.mu.Lock()
	latest := e.latest
	e.mu.Unlock()
	switch {
	case c.resp.ThisUpdate.After(latest):
		return 1
	case c.resp.ThisUpdate.Before(latest):
		return -1
	}
	cur := e.cur.Load()
	if cur == nil || cur.staple == nil || !cur.staple.ThisUpdate.Equal(latest) ||
		cur.staple.Status == ocsp.Good && c.resp.Status == ocsp.Revoked {
		return 1
	}
	return 0
}

// serveUntil is when a response stops being stapled: NextUpdate less a
// margin for clients whose clocks run ahead, at most a tenth of the
// response's lifetime so that short-lived responses are still served.
func (f *Fetcher) serveUntil(resp *ocsp.Response, next time.Time) time.Time {
	margin := min(f.opts.ClockSkew, next.Sub(resp.ThisUpdate)/10)
	return next.Add(-margin)
}

// refreshAt is when to ask again after c: at the midpoint of
// ThisUpdate..NextUpdate, with jitter of ±5% of the lifetime so that many
// servers do not ask together (soon, for a response loaded late in its
// life), but never within MinRefreshInterval of the last request.
func (f *Fetcher) refreshAt(e *entry, c *checked, now time.Time) time.Time {
	life := c.next.Sub(c.resp.ThisUpdate)
	at := c.resp.ThisUpdate.Add(life / 2).Add(backoff.Jitter(life / 20))
	if at.Before(now) {
		at = now.Add(time.Duration(rand.Int64N(int64(min(life/20, time.Minute)) + 1)))
	}
	e.mu.Lock()
	floor := e.lastRequest.Add(f.opts.MinRefreshInterval)
	e.mu.Unlock()
	if at.Before(floor) {
		at = floor
	}
	return at
}

// accept installs a verified response and schedules its refresh. It
// returns nil, changing nothing, if the response is already past its
// service end.
func (f *Fetcher) accept(e *entry, c *checked, kind EventKind) *state {
	now := f.now()
	resp, next := c.resp, c.next
	until := f.serveUntil(resp, next)
	if !now.Before(until) {
		return nil
	}
	e.mu.Lock()
	key := e.key
	e.mu.Unlock()
	s := &Staple{
		DER: c.der, Status: resp.Status, ThisUpdate: resp.ThisUpdate, NextUpdate: next,
		ProducedAt: resp.ProducedAt, RevokedAt: resp.RevokedAt, ServeUntil: until, Key: key,
	}
	st := &state{staple: s, err: c.verr, until: until.UnixNano()}
	switch resp.Status {
	case ocsp.Good:
		st.der = c.der
	case ocsp.Revoked:
		f.stats.revoked.Add(1)
		if f.opts.StapleRevoked {
			st.der, st.revoked = c.der, true
		} else {
			st.failErr = c.verr
		}
	default:
		f.stats.unknown.Add(1)
		st.failErr = c.verr
	}
	if kind == EventLoaded {
		f.stats.loaded.Add(1)
	} else {
		f.stats.fetched.Add(1)
	}
	refresh := f.refreshAt(e, c, now)
	e.mu.Lock()
	e.failures, e.lockFailures, e.lastErr = 0, 0, c.verr
	e.retryAt = e.lastRequest.Add(f.opts.MinRefreshInterval)
	if resp.ThisUpdate.After(e.latest) {
		e.latest = resp.ThisUpdate
	}
	e.cur.Store(st)
	e.mu.Unlock()
	f.schedule(e, refresh)
	ev := Event{Kind: kind, ThisUpdate: resp.ThisUpdate, NextUpdate: next}
	f.emit(e, ev)
	switch resp.Status {
	case ocsp.Revoked:
		ev.Kind, ev.Err = EventRevoked, c.verr
		f.emit(e, ev)
	case ocsp.Unknown:
		ev.Kind, ev.Err = EventUnknown, c.verr
		f.emit(e, ev)
	}
	if st.der == nil && e.mustStaple {
		f.mustStapleMissing(e, c.verr)
	}
	return st
}

// noNews handles an answer the same as the one served (same ThisUpdate):
// nothing changes but the next refresh.
func (f *Fetcher) noNews(e *entry, c *checked) *state {
	refresh := f.refreshAt(e, c, f.now())
	e.mu.Lock()
	e.failures, e.lockFailures, e.lastErr = 0, 0, c.verr
	e.retryAt = e.lastRequest.Add(f.opts.MinRefreshInterval)
	e.mu.Unlock()
	f.schedule(e, refresh)
	return e.cur.Load()
}

// retryDelay is the delay before retry n (1 for the first after a
// failure), between MinRetryDelay and MaxRetryDelay.
func (f *Fetcher) retryDelay(n int) time.Duration {
	return backoff.Retry(n, f.opts.MinRetryDelay, f.opts.MaxRetryDelay)
}

// failed records a failed fetch: counted and reported, retried after
// retryDelay. A cached verified answer still within its service time is
// kept; otherwise handshakes get nothing until the retry.
func (f *Fetcher) failed(e *entry, err error) *state {
	if e.crl {
		return f.crlFailed(e, err)
	}
	now := f.now()
	f.stats.recordFailure(err, now)
	e.mu.Lock()
	e.failures++
	e.retryAt = now.Add(f.retryDelay(e.failures))
	retryAt := e.retryAt
	e.lastErr = err
	cur := e.cur.Load()
	kept := cur != nil && cur.staple != nil && now.UnixNano() < cur.until
	if !kept {
		e.cur.Store(&state{until: retryAt.UnixNano(), err: err, failErr: err})
	}
	e.mu.Unlock()
	f.schedule(e, retryAt)
	f.emit(e, Event{Kind: EventFailed, Err: err})
	if e.mustStaple && !(kept && cur.der != nil) {
		f.mustStapleMissing(e, err)
	}
	return e.cur.Load()
}
