package ocspfetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
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
	der, err := storeCall(f, ctx, "Load", func(ctx context.Context) ([]byte, error) { return f.opts.Store.Load(ctx, e.key) })
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
// the state it adopted. Without a LockingStore, when Lock fails, or after
// twice lockTTL of finding it held (a Store that never lets go), it returns
// neither: the caller asks alone.
func (f *Fetcher) lockOrWait(ctx context.Context, e *entry) (unlock func(context.Context) error, st *state) {
	ls, ok := f.opts.Store.(LockingStore)
	if !ok {
		return nil, nil
	}
	waited, giveUp := false, time.Now().Add(2*lockTTL)
	for time.Now().Before(giveUp) {
		unlock, err := storeCall(f, ctx, "Lock", func(ctx context.Context) (func(context.Context) error, error) {
			return ls.Lock(ctx, e.key, lockTTL)
		})
		switch {
		case err == nil && waited:
			// The holder is done; what it got may be all there is.
			if st := f.fromStore(ctx, e, true); st != nil {
				f.storeDo(ctx, e, "unlock", unlock)
				return nil, st
			}
			return unlock, nil
		case err == nil:
			// Another member may have stored its answer and let go of the
			// lock since this one looked.
			if st := f.fromStore(ctx, e, false); st != nil {
				f.storeDo(ctx, e, "unlock", unlock)
				return nil, st
			}
			return unlock, nil
		case !errors.Is(err, ErrLocked):
			f.storeError(e, err)
			return nil, nil
		}
		waited = true
		t := time.NewTimer(pollEvery/2 + time.Duration(rand.Int64N(int64(pollEvery))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil // the request that follows fails on ctx
		}
		if st := f.fromStore(ctx, e, false); st != nil {
			return nil, st
		}
	}
	return nil, nil
}
