package ocspfetch

import (
	"sync"
	"sync/atomic"
)

// certMap holds the entries by certificate DER. Handshakes read it with
// one atomic load and a map lookup that neither locks nor allocates; it
// grows in time linear in the number of certificates.
//
// It is sync.Map's old design, specialized: read is an immutable map that
// lookups try first; dirty, under mu, holds every live entry whenever it is
// non-nil. A lookup that misses read goes to dirty and counts a miss; once
// the misses match dirty's size, dirty becomes the new read. dirty is
// rebuilt (one copy of read) only at the first change after that, so each
// copy is paid for by as many misses as it has entries.
type certMap struct {
	read   atomic.Pointer[map[string]*entry]
	mu     sync.Mutex
	dirty  map[string]*entry
	misses int
	n      atomic.Int64
}

func newCertMap() *certMap {
	m := &certMap{}
	empty := make(map[string]*entry)
	m.read.Store(&empty)
	return m
}

// fast returns the entry of cert from read alone: the handshake's path. It
// may be a removed one (gone set) or miss a new one.
func (m *certMap) fast(cert []byte) *entry {
	return (*m.read.Load())[string(cert)]
}

// get returns the live entry of cert, or nil.
func (m *certMap) get(cert []byte) *entry {
	if e := m.fast(cert); e != nil && !e.gone.Load() {
		return e
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := live(m.current()[string(cert)])
	m.missLocked(1)
	return e
}

// add returns the live entry of e.id, adding e if there is none; added
// reports whether e is now in the map.
func (m *certMap) add(e *entry) (_ *entry, added bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.missLocked(1)
	if old := live(m.current()[e.id]); old != nil {
		return old, false
	}
	m.makeDirty()
	m.dirty[e.id] = e
	m.n.Add(1)
	return e, true
}

// current is the map that holds every live entry: dirty if there is one.
func (m *certMap) current() map[string]*entry {
	if m.dirty != nil {
		return m.dirty
	}
	return *m.read.Load()
}

func live(e *entry) *entry {
	if e != nil && e.gone.Load() {
		return nil
	}
	return e
}

// all returns the live entries.
func (m *certMap) all() []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.current()
	es := make([]*entry, 0, len(cur))
	for _, e := range cur {
		if !e.gone.Load() {
			es = append(es, e)
		}
	}
	return es
}

// remove takes es out of the map and marks them gone.
func (m *certMap) remove(es []*entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.makeDirty()
	for _, e := range es {
		if m.dirty[e.id] == e {
			delete(m.dirty, e.id)
			e.gone.Store(true)
			m.n.Add(-1)
		}
	}
	// A removed entry stays reachable from read until dirty is promoted:
	// count the removals as misses so that that comes soon.
	m.missLocked(len(es))
}

func (m *certMap) makeDirty() {
	if m.dirty == nil {
		read := *m.read.Load()
		m.dirty = make(map[string]*entry, len(read)+1)
		for k, e := range read {
			if !e.gone.Load() {
				m.dirty[k] = e
			}
		}
	}
}

func (m *certMap) missLocked(n int) {
	if m.dirty == nil {
		return
	}
	m.misses += n
	if m.misses >= len(m.dirty) {
		promoted := m.dirty
		m.read.Store(&promoted)
		m.dirty, m.misses = nil, 0
	}
}
