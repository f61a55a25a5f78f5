package events

import (
	"context"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/olebedev/emitter"
)

// Event is one emission delivered to a Subscription.
type Event struct {
	Name string
	Args []any // a copy: listeners that modify their args do not affect it
}

// A Subscription receives matching emissions on a channel. It never blocks
// or slows Emit: when its buffer is full the emission is dropped for this
// subscription and counted by Dropped.
type Subscription struct {
	// C delivers the emissions in order. It is closed when the subscription
	// ends: by Cancel, by the context, or by an "error" emission.
	C <-chan Event

	c       chan Event
	e       *Emitter
	pattern string
	errID   ID
	stop    func() bool // stops the context watch
	dropped atomic.Uint64

	once sync.Once
	mu   sync.Mutex // guards closed and err against the bus's sends
	done bool
	err  error
}

// On subscribes to the events whose names match pattern, in the syntax of
// path.Match ("*" matches any name without a slash), with a channel of
// buffer slots (Node's events.on, in channel form). As in Node, an "error"
// emission ends the subscription with that error, unless pattern is
// "error" itself: the events already buffered are still delivered, then C
// is closed and Err reports it. The subscription also ends when ctx does.
// The "error" listener it adds for this does not count toward the
// max-listener warning: the application did not add it.
//
// Matching and dispatch go through github.com/olebedev/emitter; callback
// listeners never do, so a subscription costs Emit nothing until one
// exists.
func On(ctx context.Context, e *Emitter, pattern string, buffer int) *Subscription {
	if buffer < 0 {
		buffer = 0
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, e: e, pattern: pattern}
	if pattern != EventError {
		s.errID = e.add(EventError, func(args ...any) { s.end(errorOf(args)) }, addInternal)
	}
	e.bus0().subscribe(s)
	// end reads stop under mu, so an AfterFunc that fires at once (ctx
	// already done) waits until stop is set.
	s.mu.Lock()
	s.stop = context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	s.mu.Unlock()
	return s
}

// Cancel ends the subscription and closes C. Events still buffered in C
// can be read after Cancel. Cancel may be called more than once.
func (s *Subscription) Cancel() { s.end(nil) }

// Err reports why the subscription ended: nil while it runs or after
// Cancel, the context's error, or the error emitted.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Dropped returns how many emissions were dropped because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		stop := s.stop
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
		if s.errID != 0 {
			s.e.Off(EventError, s.errID)
		}
		s.e.bus0().unsubscribe(s)
		s.mu.Lock()
		s.done, s.err = true, err
		close(s.c)
		s.mu.Unlock()
	})
}

// matches reports whether the emission of event is for s.
func (s *Subscription) matches(event string) bool {
	if event == s.pattern {
		return true
	}
	if event == ErrorMonitor {
		// The monitor pseudo-event reaches only a subscription to it by
		// name, not every wildcard.
		return false
	}
	ok, _ := path.Match(s.pattern, event)
	return ok
}

// deliver sends a copy of the emission without blocking, counting it as
// dropped when C is full. Each subscription gets its own copy of args.
func (s *Subscription) deliver(event string, args []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if len(s.c) == cap(s.c) && cap(s.c) > 0 {
		s.dropped.Add(1)
		return
	}
	ev := Event{Name: event, Args: append([]any(nil), args...)}
	select {
	case s.c <- ev:
	default:
		s.dropped.Add(1)
	}
}

// bus bridges an Emitter to olebedev/emitter. Each subscription is an
// olebedev listener whose middleware does the delivery and marks the event
// void, so olebedev's own channels stay empty and its dispatch stays
// synchronous: nothing is spawned per emission.
type bus struct {
	oe   *emitter.Emitter
	mu   sync.Mutex
	subs map[*Subscription]<-chan emitter.Event
	list []*Subscription // copy-on-write, for names olebedev cannot match
}

// publication travels through olebedev as the single argument of its Emit,
// so that the middlewares can count who received it.
type publication struct {
	name      string
	args      []any
	delivered int
}

func (e *Emitter) bus0() *bus {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.bus == nil {
		e.bus = &bus{oe: emitter.New(0), subs: make(map[*Subscription]<-chan emitter.Event)}
	}
	return e.bus
}

func (b *bus) subscribe(s *Subscription) {
	deliver := func(oev *emitter.Event) {
		oev.Flags |= emitter.FlagVoid
		if p, ok := oev.Args[0].(*publication); ok && s.matches(p.name) {
			p.delivered++
			s.deliver(p.name, p.args)
		}
	}
	b.mu.Lock()
	b.subs[s] = b.oe.On(s.pattern, deliver)
	b.list = append(b.list[:len(b.list):len(b.list)], s)
	b.mu.Unlock()
	s.e.nsubs.Add(1)
}

func (b *bus) unsubscribe(s *Subscription) {
	b.mu.Lock()
	ch, ok := b.subs[s]
	delete(b.subs, s)
	if i := slices.Index(b.list, s); i >= 0 {
		b.list = slices.Delete(slices.Clone(b.list), i, i+1)
	}
	b.mu.Unlock()
	if ok {
		b.oe.Off(s.pattern, ch)
		s.e.nsubs.Add(-1)
	}
}

// publish delivers an emission to the matching subscriptions and reports
// whether there were any.
//
// olebedev matches both ways (the emitted topic is also a pattern against
// the subscribed ones) and gives up on the first malformed pattern, so an
// event named "*" would reach every subscription and one named "a[" none.
// Names without pattern metacharacters are exact for it; the others are
// matched here, over the same subscriptions. Each middleware re-checks the
// match, so a stray olebedev match delivers nothing.
func (e *Emitter) publish(event string, args []any) bool {
	b := e.bus0()
	p := &publication{name: event, args: args}
	if strings.ContainsAny(event, `*?[]\`) {
		b.mu.Lock()
		list := b.list
		b.mu.Unlock()
		for _, s := range list {
			if s.matches(event) {
				p.delivered++
				s.deliver(event, args)
			}
		}
		return p.delivered > 0
	}
	<-b.oe.Emit(event, p)
	return p.delivered > 0
}

// Subscriptions returns the number of live channel subscriptions made with
// On. Code that skips an emission when nobody listens (to save building its
// arguments) must check it as well as ListenerCount, or subscribers would
// miss the event.
func (e *Emitter) Subscriptions() int { return int(e.nsubs.Load()) }
