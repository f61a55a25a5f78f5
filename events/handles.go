package events

// handles finds a registration by its ID in O(1) without hashing. An ID is
// a serial number (high 32 bits) and an index (low 32 bits) into a table
// of fixed-size chunks, which grows without copying; a freed index is
// reused, and the serial tells a stale ID from the registration that
// reused its index. Guarded by Emitter.mu.
type handles struct {
	chunks []*[handleChunk]*listener // nil entry: free, or reserved for an add in progress
	n      uint32                    // indexes handed out so far
	free   []uint32
	serial uint32
}

const handleChunk = 1024

// reserve returns a new ID, whose index is not free until release.
func (h *handles) reserve() ID {
	var i uint32
	if n := len(h.free); n > 0 {
		i = h.free[n-1]
		h.free = h.free[:n-1]
	} else {
		i = h.n
		h.n++
		if int(i/handleChunk) == len(h.chunks) {
			h.chunks = append(h.chunks, new([handleChunk]*listener))
		}
	}
	if h.serial++; h.serial == 0 { // 0 is no ID's serial: ID 0 means none
		h.serial = 1
	}
	return ID(uint64(h.serial)<<32 | uint64(i))
}

// at returns the table entry of id's index, which must have been handed out.
func (h *handles) at(id ID) **listener {
	i := uint32(id)
	return &h.chunks[i/handleChunk][i%handleChunk]
}

// set registers l under its reserved ID.
func (h *handles) set(l *listener) { *h.at(l.id) = l }

// get returns the listener registered under id, or nil.
func (h *handles) get(id ID) *listener {
	if uint32(id) >= h.n {
		return nil
	}
	if l := *h.at(id); l != nil && l.id == id {
		return l
	}
	return nil
}

// release frees id's index.
func (h *handles) release(id ID) {
	*h.at(id) = nil
	h.free = append(h.free, uint32(id))
}
