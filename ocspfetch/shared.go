package ocspfetch

import (
	"context"
	"errors"
	"fmt"
)

// fromStore adopts a verified response from the Store that is fresher than
// e's latest (a later ThisUpdate). A refused response (corrupt, foreign,
// expired, too large) is reported and deleted, to be replaced by the fetch
// that follows.
func (f *Fetcher) fromStore(ctx context.Context, e *entry) *state {
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
	if e.compare(c) > 0 {
		return f.accept(e, c, EventLoaded)
	}
	return nil
}
