package events_test

// FuzzEmitterOps drives an events.Emitter and a slice-based model of Node's
// EventEmitter (lib/events.js, written out below as plainly as possible)
// with the same operation sequence and compares, after every operation,
// the listener calls made (in order, with the 'newListener' and
// 'removeListener' arguments), Emit's and Off's results, ListenerCount for
// every name and EventNames.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/events"
)

// fuzzEvents are the regular event names: two array-index names, which
// Node lists first in ascending order, and two plain ones.
var fuzzEvents = []string{"a", "b", "1", "0"}

var fuzzAllNames = []string{"a", "b", "1", "0", events.EventNewListener, events.EventRemoveListener}

// maxTags bounds the listeners a run creates: listeners that add
// listeners stop adding past it, so that a run stays linear.
const maxTags = 300

const (
	kindPlain  = iota // records the call
	kindRemove        // records, then removes the listener added just before it
	kindAdd           // records, then adds a plain listener to its own event
	numKinds
)

// call is one listener call: the event, the listener's tag and, for the
// meta events, the event and tag of the listener added or removed.
type call struct {
	ev       string
	tag      int
	metaEv   string
	metaID   events.ID // real side only, translated to metaTag afterwards
	metaTag  int
	isMetaEv bool
}

func (c call) String() string {
	if c.isMetaEv {
		return fmt.Sprintf("%s/%d(%s,%d)", c.ev, c.tag, c.metaEv, c.metaTag)
	}
	return fmt.Sprintf("%s/%d", c.ev, c.tag)
}

// ---- the model ----

type mListener struct {
	tag    int
	once   bool
	kind   int
	target int // for kindRemove: the tag it removes, or -1
	fired  bool
}

type model struct {
	lists   map[string][]*mListener
	keys    []string // insertion order of the event keys (JS object)
	eventOf map[int]string
	nextTag *int
	trace   []call
}

func newModel(nextTag *int) *model {
	return &model{lists: map[string][]*mListener{}, eventOf: map[int]string{}, nextTag: nextTag}
}

func isArrayIndex(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && strconv.FormatUint(n, 10) == s
}

// ownKeys is ReflectOwnKeys order: array indexes ascending, then strings in
// insertion order.
func (m *model) ownKeys() []string {
	var idx, rest []string
	for _, k := range m.keys {
		if isArrayIndex(k) {
			idx = append(idx, k)
		} else {
			rest = append(rest, k)
		}
	}
	slices.SortFunc(idx, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return append(idx, rest...)
}

func (m *model) add(ev string, l *mListener, prepend bool) {
	m.eventOf[l.tag] = ev
	if len(m.lists[events.EventNewListener]) > 0 {
		m.emit(events.EventNewListener, &call{metaEv: ev, metaTag: l.tag, isMetaEv: true})
	}
	if _, ok := m.lists[ev]; !ok {
		m.keys = append(m.keys, ev)
	}
	if prepend {
		m.lists[ev] = append([]*mListener{l}, m.lists[ev]...)
	} else {
		m.lists[ev] = append(m.lists[ev], l)
	}
}

func (m *model) remove(ev string, tag int) bool {
	list := m.lists[ev]
	pos := -1
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].tag == tag {
			pos = i
			break
		}
	}
	if pos < 0 {
		return false
	}
	list = slices.Delete(slices.Clone(list), pos, pos+1)
	if len(list) == 0 {
		delete(m.lists, ev)
		m.keys = slices.DeleteFunc(m.keys, func(k string) bool { return k == ev })
	} else {
		m.lists[ev] = list
	}
	if len(m.lists[events.EventRemoveListener]) > 0 {
		m.emit(events.EventRemoveListener, &call{metaEv: ev, metaTag: tag, isMetaEv: true})
	}
	return true
}

func (m *model) emit(ev string, meta *call) bool {
	list := slices.Clone(m.lists[ev])
	for _, l := range list {
		if l.once {
			if l.fired {
				continue
			}
			l.fired = true
			m.remove(ev, l.tag)
		}
		c := call{ev: ev, tag: l.tag}
		if meta != nil {
			c.metaEv, c.metaTag, c.isMetaEv = meta.metaEv, meta.metaTag, true
		}
		m.trace = append(m.trace, c)
		switch l.kind {
		case kindRemove:
			if l.target >= 0 {
				m.remove(m.eventOf[l.target], l.target)
			}
		case kindAdd:
			if *m.nextTag >= maxTags {
				break
			}
			tag := *m.nextTag
			*m.nextTag++
			m.add(ev, &mListener{tag: tag, target: -1}, false)
		}
	}
	return len(list) > 0
}

func (m *model) removeAll(names ...string) {
	hasRL := len(m.lists[events.EventRemoveListener]) > 0
	if len(names) == 0 {
		if hasRL {
			for _, k := range m.ownKeys() {
				if k != events.EventRemoveListener {
					m.removeAll(k)
				}
			}
			m.removeAll(events.EventRemoveListener)
		}
		m.lists, m.keys = map[string][]*mListener{}, nil
		return
	}
	ev := names[0]
	if !hasRL {
		if _, ok := m.lists[ev]; ok {
			delete(m.lists, ev)
			m.keys = slices.DeleteFunc(m.keys, func(k string) bool { return k == ev })
		}
		return
	}
	// The listeners the event has now, last to first.
	list := m.lists[ev]
	for i := len(list) - 1; i >= 0; i-- {
		m.remove(ev, list[i].tag)
	}
}

// ---- the real side ----

type realSide struct {
	e       *events.Emitter
	nextTag *int
	idOf    map[int]events.ID
	eventOf map[int]string
	tagOf   map[events.ID]int
	trace   []call
}

func (r *realSide) listener(ev string, tag, kind, target int) events.Listener {
	return func(args ...any) {
		c := call{ev: ev, tag: tag}
		if ev == events.EventNewListener || ev == events.EventRemoveListener {
			c.isMetaEv = true
			c.metaEv, _ = args[0].(string)
			c.metaID, _ = args[2].(events.ID)
		}
		r.trace = append(r.trace, c)
		switch kind {
		case kindRemove:
			if target >= 0 {
				r.e.Off(r.eventOf[target], r.idOf[target])
			}
		case kindAdd:
			if *r.nextTag >= maxTags {
				break
			}
			t := *r.nextTag
			*r.nextTag++
			r.register(ev, t, kindPlain, -1, func(fn events.Listener) events.ID { return r.e.On(ev, fn) })
		}
	}
}

func (r *realSide) register(ev string, tag, kind, target int, add func(events.Listener) events.ID) {
	r.eventOf[tag] = ev
	id := add(r.listener(ev, tag, kind, target))
	r.idOf[tag], r.tagOf[id] = id, tag
}

// resolve turns the IDs the meta events carried into tags.
func (r *realSide) resolve() []call {
	out := slices.Clone(r.trace)
	for i := range out {
		if out[i].isMetaEv {
			tag, ok := r.tagOf[out[i].metaID]
			if !ok {
				tag = -100 - int(out[i].metaID)
			}
			out[i].metaTag = tag
		}
	}
	return out
}

func FuzzEmitterOps(f *testing.F) {
	// Each operation is three bytes: opcode, a, b (see runOps). The seeds
	// are in testdata/fuzz/FuzzEmitterOps, one scenario each.
	f.Fuzz(runOps)
}

// runOps applies ops to an Emitter and to the model, three bytes per
// operation: opcode%10 (0 On, 1 Once, 2 PrependListener, 3
// PrependOnceListener, each with listener kind b%3; 4 a recorder on
// 'newListener' or 'removeListener' (a%2), prepended when b is odd; 5 Off of
// the a-th listener, by another event name when b is odd; 6 Emit; 7
// RemoveAllListeners(name); 8 RemoveAllListeners(); 9 nothing but the
// checks), a choosing the event.
func runOps(t *testing.T, ops []byte) {
	if len(ops) > 3*200 {
		ops = ops[:3*200]
	}
	var e events.Emitter
	e.SetMaxListeners(0)
	var realTag, modelTag int
	r := &realSide{e: &e, nextTag: &realTag, idOf: map[int]events.ID{}, eventOf: map[int]string{}, tagOf: map[events.ID]int{}}
	m := newModel(&modelTag)
	var log []string
	fail := func(format string, args ...any) {
		t.Fatalf("after ops\n  %s\n"+format, append([]any{strings.Join(log, "\n  ")}, args...)...)
	}
	for len(ops) >= 3 {
		op, a, b := ops[0]%10, int(ops[1]), int(ops[2])
		ops = ops[3:]
		ev := fuzzEvents[a%len(fuzzEvents)]
		switch op {
		case 0, 1, 2, 3: // On, Once, PrependListener, PrependOnceListener
			kind := b % numKinds
			tag, target := realTag, realTag-1
			realTag++
			modelTag++
			add := map[byte]func(string, events.Listener) events.ID{0: e.On, 1: e.Once, 2: e.PrependListener, 3: e.PrependOnceListener}[op]
			log = append(log, fmt.Sprintf("%s(%q, #%d kind %d)", []string{"on", "once", "prepend", "prependOnce"}[op], ev, tag, kind))
			r.register(ev, tag, kind, target, func(fn events.Listener) events.ID { return add(ev, fn) })
			m.add(ev, &mListener{tag: tag, once: op == 1 || op == 3, kind: kind, target: target}, op >= 2)
		case 4: // a recorder on a meta event
			meta := []string{events.EventNewListener, events.EventRemoveListener}[a%2]
			tag := realTag
			realTag++
			modelTag++
			log = append(log, fmt.Sprintf("on(%q, #%d) prepend=%v", meta, tag, b%2 == 1))
			if b%2 == 1 {
				r.register(meta, tag, kindPlain, -1, func(fn events.Listener) events.ID { return e.PrependListener(meta, fn) })
			} else {
				r.register(meta, tag, kindPlain, -1, func(fn events.Listener) events.ID { return e.On(meta, fn) })
			}
			m.add(meta, &mListener{tag: tag, target: -1}, b%2 == 1)
		case 5: // Off, by the right event or another one
			if realTag == 0 {
				continue
			}
			tag := a % realTag
			evOf := r.eventOf[tag]
			if b%2 == 1 {
				evOf = fuzzAllNames[(slices.Index(fuzzAllNames, evOf)+1)%len(fuzzAllNames)]
			}
			log = append(log, fmt.Sprintf("off(%q, #%d)", evOf, tag))
			got := e.Off(evOf, r.idOf[tag])
			want := false
			if m.eventOf[tag] == evOf {
				want = m.remove(evOf, tag)
			}
			if got != want {
				fail("Off returned %v, model %v", got, want)
			}
		case 6:
			log = append(log, fmt.Sprintf("emit(%q)", ev))
			if got, want := e.Emit(ev), m.emit(ev, nil); got != want {
				fail("Emit returned %v, model %v", got, want)
			}
		case 7:
			name := fuzzAllNames[a%len(fuzzAllNames)]
			log = append(log, fmt.Sprintf("removeAllListeners(%q)", name))
			e.RemoveAllListeners(name)
			m.removeAll(name)
		case 8:
			log = append(log, "removeAllListeners()")
			e.RemoveAllListeners()
			m.removeAll()
		case 9:
			log = append(log, "eventNames()")
		}
		got, want := callStrings(r.resolve()), callStrings(m.trace)
		if !slices.Equal(got, want) {
			fail("calls differ:\n  emitter %v\n  model   %v", got, want)
		}
		for _, name := range fuzzAllNames {
			if got, want := e.ListenerCount(name), len(m.lists[name]); got != want {
				fail("ListenerCount(%q) = %d, model %d", name, got, want)
			}
		}
		if got, want := e.EventNames(), m.ownKeys(); !slices.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
			fail("EventNames() = %q, model %q", got, want)
		}
	}
}

func callStrings(cs []call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}
