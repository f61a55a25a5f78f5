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
// or slows Emit beyond copying the emission.
type Subscription struct {
	// C delivers the emissions in order. It is closed when the subscription
	// has ended and delivered what it was to deliver (see On).
	C <-chan Event

	c       chan Event
	e       *Emitter
	pattern string
	size    int           // Buffer's n
	bounded bool          // Buffer: C's slots are all there is
	quit    chan struct{} // closed when the queue is to be dropped (not bounded)
	dropped atomic.Uint64

	mu        sync.Mutex // guards what follows, and C's sends against its close
	done      bool       // ended: nothing more is delivered
	closed    bool       // ended and unregistered: C closes when the pump is not sending
	discarded bool       // quit is closed
	err       error
	undos     []func() // On's registrations, undone last first
	queue     []Event  // emissions C has not taken yet (not bounded)
	head      int      // queue[head:] is waiting
	pumping   bool     // a pump goroutine is handing the queue to C
}

// An Option changes how On delivers. Buffer is the one there is.
type Option interface{ apply(*Subscription) }

type bufferOption int

func (n bufferOption) apply(s *Subscription) { s.size, s.bounded = int(n), true }

// Buffer bounds a subscription to C's n slots: an emission that finds them
// full is dropped for this subscription and counted by Dropped, and Emit
// neither waits for the reader nor keeps the emission for later. Use it
// where a slow reader may lose emissions but must not cost memory (a
// metrics tap, a debug view). It panics if n is negative.
func Buffer(n int) Option {
	if n < 0 {
		panic("events: negative Buffer size")
	}
	return bufferOption(n)
}

// On subscribes to the events whose names match pattern, and delivers their
// emissions on C in order: Node's events.on, in channel form.
//
// Nothing is lost unless Buffer says otherwise: as in Node, emissions that
// C has not taken yet wait in a queue of the subscription's, which grows
// while the reader is slower than the emitter, and Emit never waits for
// the reader. With Buffer(n), C has n slots and nothing more; an emission
// that finds them full is dropped and counted by Dropped.
//
// A pattern without the metacharacters of path.Match (* ? [ \) is an event
// name, and the subscription is one of that event's listeners, as Node's
// iterator is: it is called in the event's listener order, ListenerCount,
// Listeners and EventNames count it, 'newListener' and 'removeListener'
// announce it, and it counts toward the max-listener warning. A pattern
// with them ("conn*") is a listener of no one event: only Subscriptions
// counts it, and it receives an emission after the event's listeners.
//
// The subscription ends with Cancel; when ctx ends (Err reports ctx.Err());
// when "error" is emitted, unless pattern is "error" itself (Err reports
// the error); or when RemoveAllListeners removes its listener (for a
// pattern, RemoveAllListeners with no names; Err reports nil). After an
// "error" or a removal, C delivers what was queued before the end, as
// Node's iterator does; Cancel and ctx drop it (with Buffer, what C holds
// stays readable). C is closed once the subscription's listeners are
// removed. A ctx already done gives a subscription that has ended and
// added nothing.
//
// Call Cancel when you stop reading before C is closed (defer
// sub.Cancel()): until then the subscription stays registered, keeps what
// it queued, and, while the queue is not empty, a goroutine that hands it
// to C.
//
// The "error" listener On adds does not count toward the max-listener
// warning: the application did not add it. Matching patterns goes through
// github.com/olebedev/emitter; the callback listeners never do, so a
// pattern subscription costs Emit nothing until one exists.
func On(ctx context.Context, e *Emitter, pattern string, opts ...Option) *Subscription {
	s := &Subscription{e: e, pattern: pattern}
	for _, o := range opts {
		o.apply(s)
	}
	s.c = make(chan Event, s.size)
	s.C = s.c
	if !s.bounded {
		s.quit = make(chan struct{})
	}
	if err := ctx.Err(); err != nil {
		s.done, s.closed, s.err = true, true, err
		close(s.c)
		return s
	}
	e.nsubs.Add(1)
	// An "error" emitted while the registrations are made (by a
	// 'newListener' listener, or another goroutine) ends the subscription
	// there: track undoes what was registered so far, and each later
	// registration undoes itself. A panicking 'newListener' listener
	// leaves On with nothing registered.
	complete := false
	defer func() {
		if !complete {
			s.end(nil, true)
		}
	}()
	if isPattern(pattern) {
		e.bus0().subscribe(s)
		if !s.track(func() { e.bus0().unsubscribe(s) }) {
			complete = true
			return s
		}
	} else {
		id := e.register(pattern, &listener{fn: s.receive, observer: true}, false, s)
		if !s.track(func() { e.Off(pattern, id) }) {
			complete = true
			return s
		}
	}
	if pattern != EventError {
		id := e.add(EventError, s.fail, addInternal)
		if !s.track(func() { e.Off(EventError, id) }) {
			complete = true
			return s
		}
	}
	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err(), true) })
	s.track(func() { stop() })
	complete = true
	return s
}

// isPattern reports whether pattern has path.Match's metacharacters.
func isPattern(pattern string) bool { return strings.ContainsAny(pattern, `*?[\`) }

// Cancel ends the subscription, drops what it queued and closes C (with
// Buffer, what C holds can still be read). Cancel may be called more than
// once, and after the subscription ended otherwise: it then drops what is
// still queued.
func (s *Subscription) Cancel() { s.end(nil, true) }

// Err reports why the subscription ended: nil while it runs or after Cancel
// or a removal, the context's error, or the error emitted.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Dropped returns how many emissions were dropped because C was full
// (Buffer); without Buffer it is 0.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Subscriptions returns the number of live subscriptions made with On. A
// pattern subscription is no event's listener: code that skips an emission
// when nobody listens (to save building its arguments) must check it as
// well as ListenerCount, or such subscribers would miss the event.
func (e *Emitter) Subscriptions() int { return int(e.nsubs.Load()) }

// receive is the listener of a subscription to an event by name.
func (s *Subscription) receive(args ...any) { s.deliver(s.pattern, args) }

// fail is the subscription's "error" listener.
func (s *Subscription) fail(args ...any) { s.end(errorOf(args), false) }

// detached ends the subscription whose listener was removed.
func (s *Subscription) detached() { s.end(nil, false) }

// track records undo for end, or runs it now if the subscription has
// ended, and reports whether it goes on.
func (s *Subscription) track(undo func()) bool {
	s.mu.Lock()
	if !s.done {
		s.undos = append(s.undos, undo)
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	undo()
	return false
}

// end ends the subscription with err, unless it has ended already. With
// drop, what C has not taken is dropped, also after an earlier end; without
// it, the pump goes on handing the queue to C, and C is closed after it.
// The registrations are undone last first, as Node's iterator removes its
// listeners: a 'removeListener' listener that panics does not keep the
// others registered, and its panic goes on when they are removed.
func (s *Subscription) end(err error, drop bool) {
	s.mu.Lock()
	if drop && s.quit != nil && !s.discarded {
		s.discarded = true
		s.queue, s.head = nil, 0
		close(s.quit)
	}
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done, s.err = true, err
	undos := s.undos
	s.undos = nil
	s.mu.Unlock()

	var panicked any
	for i := len(undos) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if v := recover(); v != nil && panicked == nil {
					panicked = v
				}
			}()
			undos[i]()
		}()
	}
	s.e.nsubs.Add(-1)
	s.mu.Lock()
	s.closed = true
	if !s.pumping {
		close(s.c)
	}
	s.mu.Unlock()
	if panicked != nil {
		panic(panicked)
	}
}

// deliver hands a copy of the emission to C, or queues it, or (Buffer)
// drops it when C is full. Each subscription gets its own copy of args.
func (s *Subscription) deliver(event string, args []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if s.bounded {
		if len(s.c) == cap(s.c) && cap(s.c) > 0 {
			s.dropped.Add(1)
			return
		}
		select {
		case s.c <- Event{Name: event, Args: slices.Clone(args)}:
		default:
			s.dropped.Add(1)
		}
		return
	}
	ev := Event{Name: event, Args: slices.Clone(args)}
	if !s.pumping {
		select {
		case s.c <- ev:
			return
		default:
		}
		s.pumping = true
		go s.pump()
	}
	s.queue = append(s.queue, ev)
}

// maxKeptQueue is the capacity of an emptied queue kept for the next
// burst; a larger one goes back to the garbage collector.
const maxKeptQueue = 1024

// pump hands the queue to C in order, and ends when the queue is empty or
// dropped; it closes C if the subscription has ended by then.
func (s *Subscription) pump() {
	for {
		s.mu.Lock()
		if s.head == len(s.queue) {
			if cap(s.queue) > maxKeptQueue {
				s.queue = nil
			}
			s.queue, s.head = s.queue[:0], 0
			s.pumping = false
			if s.closed {
				close(s.c)
			}
			s.mu.Unlock()
			return
		}
		ev := s.queue[s.head]
		s.queue[s.head] = Event{}
		s.head++
		s.mu.Unlock()
		select {
		case s.c <- ev:
		case <-s.quit:
		}
	}
}

// matches reports whether the emission of event is for the pattern
// subscription s.
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

// bus bridges an Emitter's pattern subscriptions to olebedev/emitter. Each
// subscription is an olebedev listener whose middleware does the delivery
// and marks the event void, so olebedev's own channels stay empty and its
// dispatch stays synchronous: nothing is spawned per emission.
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
	s.e.npat.Add(1)
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
		s.e.npat.Add(-1)
	}
}

// patterns returns the live pattern subscriptions.
func (b *bus) patterns() []*Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.list
}

// publish delivers an emission to the matching pattern subscriptions and
// reports whether there were any.
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
