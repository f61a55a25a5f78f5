package ocspfetch

import (
	"context"
	"errors"
	"fmt"
)

// storeCall runs call, a Store method (user code), on a goroutine of its
// own, with a context that ends after StoreTimeout or when ctx does, and
// returns its result, or an error wrapping ErrStore as soon as that
// context ends. A call that does not return is abandoned: its goroutine
// ends when the Store returns, counted meanwhile for Close. A panic is
// recovered and returned as ErrPanic. ErrCacheMiss and ErrLocked pass
// through; other errors are wrapped in ErrStore.
func storeCall[T any](f *Fetcher, ctx context.Context, op string, call func(context.Context) (T, error)) (T, error) {
	var zero T
	f.track(true)
	ctx, cancel := context.WithTimeout(ctx, f.opts.StoreTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer f.untrack(true)
		defer func() {
			if v := recover(); v != nil {
				f.stats.panics.Add(1)
				done <- result{err: newErr(ErrPanic, "Store "+op+": "+fmt.Sprint(v), nil)}
			}
		}()
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		switch {
		case r.err == nil, errors.Is(r.err, ErrCacheMiss), errors.Is(r.err, ErrLocked), errors.Is(r.err, ErrPanic):
			return r.v, r.err
		}
		return zero, newErr(ErrStore, op, r.err)
	case <-ctx.Done():
		return zero, newErr(ErrStore, fmt.Sprintf("%s did not return within %v", op, f.opts.StoreTimeout), ctx.Err())
	}
}

// storeDo is storeCall for a Store call that returns only an error, which
// it reports for e.
func (f *Fetcher) storeDo(ctx context.Context, e *entry, op string, call func(context.Context) error) {
	_, err := storeCall(f, ctx, op, func(ctx context.Context) (struct{}, error) { return struct{}{}, call(ctx) })
	f.storeError(e, err)
}

// storeError reports a failed Store call.
func (f *Fetcher) storeError(e *entry, err error) {
	if err != nil {
		f.emit(e, Event{Kind: EventStoreError, Err: err})
	}
}
