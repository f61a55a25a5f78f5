package ocspfetch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/sync/singleflight"
)

// startFlight starts, or joins, the one fetch in flight for e. A cold flight
// (refresh false) first rechecks the cache and the backoff, so a caller that
// raced with a just-finished flight does not cause a second request.
func (f *Fetcher) startFlight(e *entry, refresh bool) <-chan singleflight.Result {
	return f.group.DoChan(e.id, func() (any, error) {
		f.lifeMu.Lock()
		if f.closed.Load() {
			f.lifeMu.Unlock()
			return nil, ErrClosed
		}
		f.flights.Add(1)
		f.lifeMu.Unlock()
		defer f.flights.Done()
		ctx, cancel := context.WithTimeout(f.ctx, f.fetchTimeout)
		defer cancel()
		return f.update(ctx, e, refresh), nil
	})
}

// update obtains a new answer for e and installs it; it returns the state
// handshakes now get. Flights for one entry never overlap.
func (f *Fetcher) update(ctx context.Context, e *entry, refresh bool) *state {
	now := f.now()
	if !refresh {
		if st := e.cur.Load(); st != nil && now.UnixNano() < st.until {
			return st
		}
		if _, ok := e.backingOff(now); ok {
			return e.cur.Load()
		}
	}
	e.mu.Lock()
	issuer, hasID, tried := e.issuer, e.hasID, e.triedStore
	e.mu.Unlock()
	if !hasID {
		if issuer == nil {
			iss, err := f.fetchIssuer(ctx, e.cert)
			if err != nil {
				return f.failed(e, err)
			}
			issuer = iss
		}
		id, err := newCertID(f.opts.CertIDHash, e.cert, issuer)
		if err != nil {
			return f.failed(e, err)
		}
		req, err := ocsp.CreateRequest(e.cert, issuer, &ocsp.RequestOptions{Hash: f.opts.CertIDHash})
		if err != nil {
			return f.failed(e, newErr(ErrBadCertificate, "creating request", err))
		}
		e.mu.Lock()
		e.issuer, e.id2, e.key, e.reqDER, e.hasID = issuer, id, id.key(), req, true
		e.mu.Unlock()
	}
	if !tried {
		e.mu.Lock()
		e.triedStore = true
		e.mu.Unlock()
		if st := f.fromStore(ctx, e); st != nil {
			return st
		}
	}
	der, err := f.postOCSP(ctx, e.url, e.reqDER)
	if err != nil {
		return f.failed(e, err)
	}
	resp, next, verr := verify(der, e.cert, e.issuer, e.id2, f.now(), f.opts.ClockSkew)
	if resp == nil {
		return f.failed(e, verr)
	}
	kind := EventFetched
	if e.cur.Load() != nil && e.cur.Load().staple != nil {
		kind = EventRefreshed
	}
	st := f.accept(e, der, resp, next, verr, kind)
	if st == nil {
		// Valid but too close to its NextUpdate to be worth serving.
		return f.failed(e, newErr(ErrExpired, "response ends within the clock skew margin", nil))
	}
	if err := f.opts.Store.Store(ctx, e.key, der); err != nil {
		f.emit(e, Event{Kind: EventStoreError, Err: err})
	}
	return st
}

// serveUntil is when a response stops being stapled: NextUpdate less a
// margin for clients whose clocks run ahead, at most a tenth of the
// response's lifetime so that short-lived responses are still served.
func (f *Fetcher) serveUntil(resp *ocsp.Response, next time.Time) time.Time {
	margin := min(f.opts.ClockSkew, next.Sub(resp.ThisUpdate)/10)
	return next.Add(-margin)
}

// accept installs a verified response and schedules its refresh at the
// midpoint of ThisUpdate..NextUpdate, with jitter of ±5% of the lifetime so
// that many servers do not ask together. It returns nil, changing nothing,
// if the response is already past its service end.
func (f *Fetcher) accept(e *entry, der []byte, resp *ocsp.Response, next time.Time, verr error, kind EventKind) *state {
	now := f.now()
	until := f.serveUntil(resp, next)
	if !now.Before(until) {
		return nil
	}
	e.mu.Lock()
	key := e.key
	e.mu.Unlock()
	s := &Staple{
		DER: der, Status: resp.Status, ThisUpdate: resp.ThisUpdate, NextUpdate: next,
		ProducedAt: resp.ProducedAt, RevokedAt: resp.RevokedAt, ServeUntil: until, Key: key,
	}
	st := &state{staple: s, err: verr, until: until.UnixNano()}
	switch resp.Status {
	case ocsp.Good:
		st.der = der
	case ocsp.Revoked:
		f.stats.revoked.Add(1)
		if f.opts.StapleRevoked {
			st.der = der
		} else {
			st.failErr = verr
		}
	default:
		f.stats.unknown.Add(1)
		st.failErr = verr
	}
	if kind == EventLoaded {
		f.stats.loaded.Add(1)
	} else {
		f.stats.fetched.Add(1)
	}
	life := next.Sub(resp.ThisUpdate)
	refresh := resp.ThisUpdate.Add(life / 2).Add(jitter(life / 20))
	if refresh.Before(now) {
		// Loaded late in its life: refresh soon, but not in lockstep.
		refresh = now.Add(time.Duration(rand.Int64N(int64(min(life/20, time.Minute)) + 1)))
	}
	e.mu.Lock()
	e.failures, e.retryAt, e.refreshAt, e.lastErr = 0, time.Time{}, refresh, verr
	e.cur.Store(st)
	e.mu.Unlock()
	f.poke()
	ev := Event{Kind: kind, ThisUpdate: resp.ThisUpdate, NextUpdate: next}
	f.emit(e, ev)
	switch resp.Status {
	case ocsp.Revoked:
		ev.Kind, ev.Err = EventRevoked, verr
		f.emit(e, ev)
	case ocsp.Unknown:
		ev.Kind, ev.Err = EventUnknown, verr
		f.emit(e, ev)
	}
	if st.der == nil && e.mustStaple {
		f.mustStapleMissing(e, verr)
	}
	return st
}

// jitter returns a uniform duration in [-d, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(2*d)+1)) - d
}

// failed records a failed fetch: counted and reported, retried after a
// backoff of MinBackoff doubling to MaxBackoff. A cached verified answer
// still within its service time is kept; otherwise handshakes get nothing
// until the retry.
func (f *Fetcher) failed(e *entry, err error) *state {
	now := f.now()
	reason := classify(err)
	f.stats.failures.Add(1)
	f.stats.mu.Lock()
	f.stats.byReason[reason]++
	f.stats.lastErr, f.stats.lastErrAt = err, now
	f.stats.mu.Unlock()

	e.mu.Lock()
	e.failures++
	backoff := MaxBackoff
	if e.failures <= 7 {
		backoff = min(MinBackoff<<(e.failures-1), MaxBackoff)
	}
	e.retryAt = now.Add(backoff)
	e.refreshAt = e.retryAt
	e.lastErr = err
	cur := e.cur.Load()
	kept := cur != nil && cur.staple != nil && now.UnixNano() < cur.until
	if !kept {
		e.cur.Store(&state{until: e.retryAt.UnixNano(), err: err, failErr: err})
	}
	e.mu.Unlock()
	f.poke()
	f.emit(e, Event{Kind: EventFailed, Err: err})
	if e.mustStaple && !(kept && cur.der != nil) {
		f.mustStapleMissing(e, err)
	}
	return e.cur.Load()
}

// fromStore adopts a verified, still servable response from the Store.
// Anything else there (corrupt, foreign, expired) is deleted, to be
// replaced by the fetch that follows.
func (f *Fetcher) fromStore(ctx context.Context, e *entry) *state {
	der, err := f.opts.Store.Load(ctx, e.key)
	if err != nil {
		if !errors.Is(err, ErrCacheMiss) {
			f.emit(e, Event{Kind: EventStoreError, Err: err})
		}
		return nil
	}
	resp, next, verr := verify(der, e.cert, e.issuer, e.id2, f.now(), f.opts.ClockSkew)
	if resp != nil {
		if st := f.accept(e, der, resp, next, verr, EventLoaded); st != nil {
			return st
		}
	}
	f.opts.Logger.Debug("ocspfetch: ignoring stored response", "key", e.key, "err", verr)
	if err := f.opts.Store.Delete(ctx, e.key); err != nil {
		f.emit(e, Event{Kind: EventStoreError, Err: err})
	}
	return nil
}

// poke wakes the scheduler to look at refresh times again.
func (f *Fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// maxSleep bounds the scheduler's sleep, so that a clock that jumps (or a
// fake one in tests) is noticed within it.
const maxSleep = time.Minute

// loop is the Fetcher's one background goroutine: it starts refreshes when
// they are due.
func (f *Fetcher) loop() {
	defer close(f.loopDone)
	t := time.NewTimer(maxSleep)
	defer t.Stop()
	for {
		d := maxSleep
		if !f.opts.manualRefresh {
			_, d = f.refreshDue(f.now())
		}
		t.Reset(d)
		select {
		case <-f.done:
			return
		case <-f.wake:
		case <-t.C:
		}
	}
}

// refreshDue starts the refreshes due at now and returns their result
// channels and how long until the next one is due (at most maxSleep).
// Certificates unused for idleTimeout are dropped instead of refreshed.
func (f *Fetcher) refreshDue(now time.Time) ([]<-chan singleflight.Result, time.Duration) {
	var started []<-chan singleflight.Result
	var idle []*entry
	next := maxSleep
	for _, e := range *f.hot.Load() {
		e.mu.Lock()
		at := e.refreshAt
		if at.IsZero() {
			e.mu.Unlock()
			continue
		}
		if d := at.Sub(now); d > 0 {
			e.mu.Unlock()
			next = min(next, d)
			continue
		}
		if e.used.Swap(false) {
			e.lastUsed = now
		}
		if now.Sub(e.lastUsed) > idleTimeout {
			e.refreshAt = time.Time{}
			e.mu.Unlock()
			idle = append(idle, e)
			continue
		}
		// Pending until the flight reschedules it.
		e.refreshAt = time.Time{}
		e.mu.Unlock()
		if f.closed.Load() {
			break
		}
		started = append(started, f.startFlight(e, true))
	}
	if len(idle) > 0 {
		f.forget(idle)
	}
	return started, max(next, time.Millisecond)
}

// forget removes entries from the hot map.
func (f *Fetcher) forget(es []*entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.hot.Load()
	m := make(map[string]*entry, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, e := range es {
		delete(m, e.id)
	}
	f.hot.Store(&m)
}
