package crl

import (
	"bytes"
	"hash/maphash"
)

// maxSerial is the longest serial the index holds (its slot keeps the
// length in a byte). RFC 5280 allows 20 octets.
const maxSerial = 255

// loadNum/loadDen is the index's load factor: at most 5 slots in 8 are
// used, so a miss probes about 3 slots on average and a hit fewer.
const loadNum, loadDen = 5, 8

// index is an open-addressing hash table with linear probing of the
// serials a CRL lists. A slot is one uint64 pointing into the CRL's DER:
//
//	bits 63..32  offset of the serial's content octets in Raw (never 0)
//	bits 31..24  their length
//	bit  23      the entry's reason is removeFromCRL
//	bits 22..0   23 bits of the serial's hash, compared before the bytes
//
// 0 is an empty slot. The table has ceil(n·8/5) slots, so it costs 13 bytes
// per entry whatever the serials' length, against 34 bytes or so of DER per
// entry; lookups hash the serial once and compare bytes only on a 23-bit
// match.
type index struct {
	slots []uint64
	seed  maphash.Seed
}

const (
	tagBits     = 23
	tagMask     = 1<<tagBits - 1
	removedFlag = 1 << tagBits
)

// init sizes the table for n entries.
func (x *index) init(n int) {
	x.seed = maphash.MakeSeed()
	size := (n*loadDen + loadNum - 1) / loadNum
	if size < 8 {
		size = 8
	}
	x.slots = make([]uint64, size)
}

// home returns the slot a hash starts probing at (the hash's top 32 bits
// scaled to the table: no modulo, any table size) and its tag.
func (x *index) home(h uint64) (int, uint64) {
	return int((h >> 32) * uint64(len(x.slots)) >> 32), h & tagMask
}

// pending is an entry scanned but not yet placed: its slot value and the
// slot its probing starts at.
type pending struct {
	slot uint64
	home uint32
}

// prepare returns the slot value and home of the serial at raw[off:off+n].
func (x *index) prepare(raw []byte, off, n int, removed bool) pending {
	i, tag := x.home(maphash.Bytes(x.seed, raw[off:off+n]))
	slot := uint64(off)<<32 | uint64(n)<<24 | tag
	if removed {
		slot |= removedFlag
	}
	return pending{slot, uint32(i)}
}

// windowSlots is the part of the table one bucket of build covers: 16,384
// slots, 128 KiB, which stay in the L2 cache while the bucket is placed.
const windowSlots = 1 << 14

// build places every pending entry. Placing them in the order they come
// would touch a random slot of a table of megabytes for each, a cache miss
// each time; so they are first distributed into buckets by the window of
// the table their home is in (sequential writes to a few streams), then
// placed bucket by bucket. Linear probing gives the same table either way.
func (x *index) build(raw []byte, ps []pending) {
	nb := (len(x.slots) + windowSlots - 1) / windowSlots
	if nb <= 1 || len(ps) < windowSlots {
		for _, p := range ps {
			x.place(raw, p)
		}
		return
	}
	start := make([]int, nb+1)
	for _, p := range ps {
		start[p.home/windowSlots+1]++
	}
	for b := 1; b <= nb; b++ {
		start[b] += start[b-1]
	}
	sorted := make([]pending, len(ps))
	for _, p := range ps {
		b := p.home / windowSlots
		sorted[start[b]] = p
		start[b]++
	}
	for _, p := range sorted {
		x.place(raw, p)
	}
}

// place puts p in the first free slot from its home on. A serial listed
// twice is kept once, revoked if either listing is not removeFromCRL.
func (x *index) place(raw []byte, p pending) {
	i := int(p.home)
	tag := p.slot & tagMask
	for {
		s := x.slots[i]
		if s == 0 {
			x.slots[i] = p.slot
			return
		}
		if s&tagMask == tag && x.equal(raw, s, x.serialAt(raw, p.slot)) {
			if p.slot&removedFlag == 0 {
				x.slots[i] = s &^ removedFlag
			}
			return
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

// serialAt returns the serial slot s points at.
func (x *index) serialAt(raw []byte, s uint64) []byte {
	off, n := int(s>>32), int(s>>24&0xff)
	return raw[off : off+n]
}

// lookup finds serial: whether it is listed, and whether as
// removeFromCRL.
func (x *index) lookup(raw, serial []byte) (found, removed bool) {
	if len(x.slots) == 0 {
		return false, false
	}
	i, tag := x.home(maphash.Bytes(x.seed, serial))
	for {
		s := x.slots[i]
		if s == 0 {
			return false, false
		}
		if s&tagMask == tag && x.equal(raw, s, serial) {
			return true, s&removedFlag != 0
		}
		if i++; i == len(x.slots) {
			i = 0
		}
	}
}

// equal compares the serial slot s points at with serial.
func (x *index) equal(raw []byte, s uint64, serial []byte) bool {
	off, n := int(s>>32), int(s>>24&0xff)
	return n == len(serial) && bytes.Equal(raw[off:off+n], serial)
}

// all calls yield with each distinct serial indexed and whether it is
// listed as removeFromCRL, in no particular order.
func (x *index) all(raw []byte, yield func(serial []byte, removed bool) bool) {
	for _, s := range x.slots {
		if s == 0 {
			continue
		}
		off, n := int(s>>32), int(s>>24&0xff)
		if !yield(raw[off:off+n], s&removedFlag != 0) {
			return
		}
	}
}
