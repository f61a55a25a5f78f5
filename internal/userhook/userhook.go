// Package userhook runs the code a user hands a Fetcher (OnEvent, a
// Logger's handler, a Store) so that it cannot take the Fetcher down: a
// panic is recovered and counted, and a Store call is bounded in time.
// ocspfetch and crlfetch each have a Guard, set up with their own
// sentinels.
package userhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/internal/closewait"
	"github.com/tlsemit/tlsemit/internal/errwrap"
)

// Guard is one Fetcher's way of calling user code. Its fields are set
// when the Fetcher is made and not changed afterwards; Calls is counted.
type Guard struct {
	// Name is the package's, the prefix of what is logged ("crlfetch").
	Name string
	// Logger, if set, is told of a panic recovered, unless it is its own.
	Logger *slog.Logger
	// Panics counts the panics recovered.
	Panics *atomic.Int64
	// StoreTimeout bounds a Store call.
	StoreTimeout time.Duration
	// ErrStore and ErrPanic are the package's sentinels for a Store call
	// that failed or did not return in time, and for a panic.
	ErrStore, ErrPanic error
	// Answers are the errors a Store returns that are answers rather
	// than failures (nothing stored, a lock another holds): StoreCall
	// returns them as they are.
	Answers []error
	// Calls counts the Store calls running, those StoreCall gave up on
	// included, for Close to wait for.
	Calls closewait.Group
}

// Contain runs fn, user code named what ("OnEvent", "Logger"),
// recovering and counting its panic, which it reports to the Logger
// unless the Logger is what panicked.
func (g *Guard) Contain(what string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			g.Panics.Add(1)
			if log := g.Logger; log != nil && what != "Logger" {
				g.Contain("Logger", func() { log.Error(g.Name+": "+what+" panicked", "panic", fmt.Sprint(v)) })
			}
		}
	}()
	fn()
}

// StoreCall runs call, the Store method op, on a goroutine of its own,
// with a context that ends after StoreTimeout or when ctx does, and
// returns its result, or an error wrapping ErrStore as soon as that
// context ends. A call that does not return is abandoned: its goroutine
// ends when the Store returns. A panic is recovered and returned as
// ErrPanic. The Answers pass through; other errors are wrapped in
// ErrStore.
func StoreCall[T any](g *Guard, ctx context.Context, op string, call func(context.Context) (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, g.StoreTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	g.Calls.Add() // never closed: a fetch that ends saves what it got
	go func() {
		defer g.Calls.Done()
		defer func() {
			if v := recover(); v != nil {
				g.Panics.Add(1)
				done <- result{err: errwrap.New(g.ErrPanic, "Store "+op+": "+fmt.Sprint(v), nil)}
			}
		}()
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err == nil || errors.Is(r.err, g.ErrPanic) || g.answer(r.err) {
			return r.v, r.err
		}
		return zero, errwrap.New(g.ErrStore, op, r.err)
	case <-ctx.Done():
		return zero, errwrap.New(g.ErrStore, fmt.Sprintf("%s did not return within %v", op, g.StoreTimeout), ctx.Err())
	}
}

func (g *Guard) answer(err error) bool {
	for _, a := range g.Answers {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}
