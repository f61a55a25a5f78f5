package ocspfetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tlsemit/tlsemit/internal/userhook"
)

const (
	// lockTTL is how long a fleet member's lock on a certificate lasts: the
	// time its request may take before others ask too, and how long they
	// wait if it dies holding the lock.
	lockTTL = 10 * time.Second

	// pollEvery is how often a waiting member looks in the Store for the
	// lock holder's answer (with jitter of half of it either way).
	pollEvery = 50 * time.Millisecond
)

// fromStore adopts a verified response from the Store that is fresher than
// e's latest (a later ThisUpdate), or, with same, one as fresh: the answer
// a fleet member got while this one waited. A refused response (corrupt,
// foreign, expired, too large) is reported and deleted, to be replaced by
// the fetch that follows.
func (f *Fetcher) fromStore(ctx context.Context, e *entry, same bool) *state {
	der, err := userhook.StoreCall(&f.guard, ctx, "Load", func(ctx context.Context) ([]byte, error) { return f.opts.Store.Load(ctx, e.key) })
	if errors.Is(err, ErrCacheMiss) {
		return nil
	}
	if err != nil {
		f.storeError(e, err)
		return nil
	}
	var c *checked
	if int64(len(der)) > f.opts.MaxResponseSize {
		err = newErr(ErrResponseTooLarge, fmt.Sprintf("%d bytes stored, more than MaxResponseSize", len(der)), nil)
	} else {
		c, err = f.check(e, der)
	}
	if err != nil {
		f.emit(e, Event{Kind: EventStoreError, Err: err})
		f.storeDo(ctx, e, "Delete", func(ctx context.Context) error { return f.opts.Store.Delete(ctx, e.key) })
		return nil
	}
	switch e.compare(c) {
	case 1:
		return f.accept(e, c, EventLoaded)
	case 0:
		if same {
			return f.noNews(e, c)
		}
	}
	return nil
}

// lockOrWait lets one member of a fleet ask the responder: with a
// LockingStore it takes e's lock and returns its unlock, or, while another
// member holds it, polls the Store for that member's answer and returns
// the state it adopted. Without a LockingStore, or after twice lockTTL of
// finding it held (a Store that never lets go), it returns none of them:
// the caller asks alone. When Lock fails (the shared store is down or
// slow) it returns lockFailed, and the caller decides (see shareLater).
func (f *Fetcher) lockOrWait(ctx context.Context, e *entry) (unlock func(context.Context) error, st *state, lockFailed bool) {
	ls, ok := f.opts.Store.(LockingStore)
	if !ok {
		return nil, nil, false
	}
	waited, giveUp := false, time.Now().Add(2*lockTTL)
	for time.Now().Before(giveUp) {
		unlock, err := userhook.StoreCall(&f.guard, ctx, "Lock", func(ctx context.Context) (func(context.Context) error, error) {
			return ls.Lock(ctx, e.key, lockTTL)
		})
		switch {
		case err == nil:
			// The holder is done (waited), or another member may have
			// stored its answer and let go of the lock since this one
			// looked: what it got may be all there is.
			if st := f.fromStore(ctx, e, waited); st != nil {
				f.storeDo(ctx, e, "unlock", unlock)
				return nil, st, false
			}
			return unlock, nil, false
		case !errors.Is(err, ErrLocked):
			f.storeError(e, err)
			return nil, nil, true
		}
		waited = true
		t := time.NewTimer(pollEvery/2 + time.Duration(rand.Int64N(int64(pollEvery))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, false // the request that follows fails on ctx
		}
		if st := f.fromStore(ctx, e, false); st != nil {
			return nil, st, false
		}
	}
	return nil, nil, false
}

// aloneAt is when a member that cannot reach the fleet's store stops
// waiting for it and asks the responder itself: a tenth of the staple's
// lifetime before its service ends (17 h for a 7-day answer), which leaves
// time for retries with the responder, while Redis has from the refresh
// (at half the lifetime) until then to come back.
func aloneAt(s *Staple) time.Time {
	return s.ServeUntil.Add(-s.NextUpdate.Sub(s.ThisUpdate) / 10)
}

// shareLater handles a refresh whose Lock failed while e still serves a
// staple that is not near its end: rather than every member asking the
// responder at once (a Redis hang during a refresh wave), it keeps serving
// the staple and tries the fleet again after a backoff, at the latest at
// aloneAt. It returns the state served, or nil when the caller should ask
// the responder alone.
func (f *Fetcher) shareLater(e *entry, now time.Time) *state {
	cur := e.cur.Load()
	if cur == nil || cur.der == nil || cur.staple == nil || now.UnixNano() >= cur.until {
		return nil
	}
	alone := aloneAt(cur.staple)
	if !now.Before(alone) {
		return nil
	}
	e.mu.Lock()
	e.lockFailures++
	at := now.Add(f.retryDelay(e.lockFailures))
	e.mu.Unlock()
	if at.After(alone) {
		at = alone
	}
	f.schedule(e, at)
	return cur
}
