package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/internal/backoff"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// ticketKeySize is the size of Node's ticket keys, which tlsserver takes.
const ticketKeySize = 48

// TicketKeys gives srv the fleet's session-ticket keys and keeps them
// current, so that a ticket issued by any member resumes on every member.
//
// Keys belong to time slots of TicketKeyPeriod that every member can name.
// Each slot's key is created once, by whichever member asks first (SET NX),
// sealed with the fleet's Secret; the next slot's key is created while the
// current one is in use, so that every member can decrypt with it before
// anyone encrypts with it. A member encrypts with the current slot's key
// and decrypts with every key of the last TicketLifetime. Members poll
// Redis (at most every minute, with jitter); a handshake never waits for
// Redis.
//
// A key missing from Redis (Redis restarted empty, or evicted it) or
// spoiled there (a value that does not open, or of another type) is
// written again by the first member to poll that knows it, and the others
// read it back: the fleet keeps the keys its tickets were issued under.
//
// When Redis cannot be reached the member keeps the keys it knows,
// switching to the announced next key on time, and beyond them encrypts
// with a key of its own (tickets then resume on this member only); once
// Redis answers it adopts the fleet's keys again within one poll, and
// offers its own key for a slot nobody has created. A key a member held and
// no longer encrypts with is kept for decryption for TicketLifetime.
//
// TicketKeys waits, within ctx, for the first answer from Redis (at most
// OpTimeout if ctx has no deadline); without one it starts on the fallback
// and keeps trying. The error is non-nil, and nothing is attached, only
// for a closed Fleet or a nil srv. detach stops updating srv's keys, which
// it keeps, once however often it is called; Close stops every server's.
func (f *Fleet) TicketKeys(ctx context.Context, srv *tlsserver.Server) (detach func(), err error) {
	if srv == nil {
		return nil, errors.New("fleet: TicketKeys: nil server")
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	r := f.rot
	fresh := r == nil
	if fresh {
		r = newRotator(f)
		f.rot = r
	}
	// Registered under f.mu, so that a loop retiring r for want of servers
	// cannot miss this one.
	r.mu.Lock()
	r.servers[srv] = struct{}{}
	r.mu.Unlock()
	f.mu.Unlock()
	if fresh {
		r.sync(ctx, f.now())
		r.install(f.now()) // the first ring: srv is the only server
	} else {
		r.give(srv)
	}
	if fresh && !f.goroutines.Go(r.loop) {
		r.remove(srv)
		return nil, ErrClosed
	}
	var once sync.Once
	return func() { once.Do(func() { r.remove(srv) }) }, nil
}

// rotator keeps the fleet's ticket keys for the servers of one Fleet.
type rotator struct {
	f  *Fleet
	id string // names this fleet's keys apart from another Secret's

	mu      sync.Mutex
	servers map[*tlsserver.Server]struct{}
	slots   map[int64]*slotKeys
	ring    [][]byte // as last installed
	synced  bool     // the last sync reached Redis
	syncs   int64    // syncs done, for tests
}

// slotKeys are the keys a member knows for one slot.
type slotKeys struct {
	fleet []byte   // the fleet's, as Redis last said or as this member wrote it
	local []byte   // this member's own, made while the fleet's was unknown
	old   [][]byte // keys held before, for decryption only
}

// maxOldKeys bounds the keys kept per slot beyond the fleet's and the
// member's own: a key that keeps changing under a slot's name (a writer
// without the Secret cannot make one that opens) must not grow the ring.
const maxOldKeys = 4

// retire keeps k, a key the slot no longer encrypts with, for decryption.
func (sk *slotKeys) retire(k []byte) {
	if k == nil || slices.ContainsFunc(sk.old, func(x []byte) bool { return bytes.Equal(x, k) }) {
		return
	}
	sk.old = append(sk.old, k)
	if len(sk.old) > maxOldKeys {
		sk.old = sk.old[len(sk.old)-maxOldKeys:]
	}
}

func newRotator(f *Fleet) *rotator {
	return &rotator{
		f:       f,
		id:      f.ticket.keyID(),
		servers: make(map[*tlsserver.Server]struct{}),
		slots:   make(map[int64]*slotKeys),
	}
}

func (r *rotator) slot(t time.Time) int64 { return t.UnixNano() / int64(r.f.period) }

func (r *rotator) start(slot int64) time.Time { return time.Unix(0, slot*int64(r.f.period)) }

// kept is how many slots before the current one are kept for decryption:
// a ticket issued at the very end of slot s must open until TicketLifetime
// after the start of slot s+1.
func (r *rotator) kept() int64 {
	return int64((r.f.life + r.f.period - 1) / r.f.period)
}

// name is the Redis key of a slot's ticket key. The hash tag puts every
// ticket key in one Cluster slot, so one pipeline reads them all; the
// period is part of the name, so that members configured differently
// during a rolling change do not read one slot number two ways.
func (r *rotator) name(slot int64) string {
	return fmt.Sprintf("%s{ticket-keys}:%s:%d:%d", r.f.prefix, r.id, r.f.period.Milliseconds(), slot)
}

// expiry is when Redis may forget a slot's key: once its last ticket, issued
// by the end of the slot (give or take a period of clock skew), is past
// TicketLifetime.
func (r *rotator) expiry(slot int64) time.Time {
	return r.start(slot + 2).Add(r.f.life)
}

// maxTicketValue bounds what a ticket-key read takes from Redis: a sealed
// key is 89 bytes; anything longer is not ours, and is read no further.
const maxTicketValue = 512

// read is what one slot's name held: a value (at most maxTicketValue+1
// bytes of it), nothing, or a value of another type.
type read struct {
	val       []byte
	wrongType bool
}

// repairScript replaces the value under KEYS[1] with ARGV[2] (expiring at
// ARGV[3], unix ms), unless it changed since this member read ARGV[1]
// there ("" for nothing or another type): it returns what is there after
// (at most ARGV[4]+1 bytes of it). So members that find the same junk, or
// the same missing key, agree on one replacement, and a key another member
// just wrote is never overwritten.
var repairScript = redis.NewScript(`
local t = redis.call("TYPE", KEYS[1])["ok"]
if t == "string" then
  local v = redis.call("GETRANGE", KEYS[1], 0, ARGV[4])
  if v ~= ARGV[1] then return v end
end
redis.call("SET", KEYS[1], ARGV[2], "PXAT", ARGV[3])
return ARGV[2]`)

// sync reads the fleet's keys for the slots around now, creating the
// current and next slots' keys if nobody has, and writing again the keys
// this member knows that Redis lost or holds spoiled. It reports whether
// Redis answered.
func (r *rotator) sync(ctx context.Context, now time.Time) bool {
	cur := r.slot(now)
	first := cur - r.kept()
	r.mu.Lock()
	// What this member offers for a slot: the key it knows (so that a
	// Redis that lost it gets it back), else its own, else a new one.
	offer := map[int64][]byte{}
	for s := first; s <= cur+1; s++ {
		switch sk := r.slots[s]; {
		case sk != nil && sk.fleet != nil:
			offer[s] = sk.fleet
		case sk != nil && sk.local != nil:
			offer[s] = sk.local
		case s >= cur:
			offer[s] = newTicketKey()
		}
	}
	r.mu.Unlock()

	reads, ok := r.readSlots(ctx, cur, first, offer)
	if ok {
		ok = r.repair(ctx, now, cur, reads, offer)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	r.synced = ok
	for s, rd := range reads {
		k := r.open(s, rd)
		if k == nil {
			continue
		}
		sk := r.known(s)
		if sk.fleet != nil && !bytes.Equal(sk.fleet, k) {
			sk.retire(sk.fleet) // another member's key won: keep ours for its tickets
		}
		sk.fleet = k
		if sk.local != nil && bytes.Equal(sk.local, k) {
			sk.local = nil // the fleet adopted our key
		}
	}
	return ok
}

// readSlots creates the current and next slots' keys if nobody has (SET
// NX), then reads every slot's, each read bounded by maxTicketValue: one
// pipeline. It reports whether Redis answered every command.
func (r *rotator) readSlots(ctx context.Context, cur, first int64, offer map[int64][]byte) (map[int64]read, bool) {
	f := r.f
	type reply struct {
		created []*redis.BoolCmd
		reads   []*redis.StringCmd
	}
	rep, err := do(f, ctx, &f.tickets, "PIPELINE", func(ctx context.Context) (reply, error) {
		var rep reply
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, s := range []int64{cur, cur + 1} {
				name := r.name(s)
				rep.created = append(rep.created, p.SetNX(ctx, name, f.ticket.seal(name, offer[s]), r.expiry(s).Sub(f.now())))
			}
			for s := first; s <= cur+1; s++ {
				rep.reads = append(rep.reads, p.GetRange(ctx, r.name(s), 0, maxTicketValue))
			}
			return nil
		})
		var rerr redis.Error
		if errors.As(err, &rerr) {
			err = nil // a command's own error: read per command below
		}
		return rep, err
	})
	if err != nil {
		return nil, false
	}
	ok := true
	for _, c := range rep.created {
		if err := c.Err(); err != nil && !redis.HasErrorPrefix(err, "WRONGTYPE") {
			f.failed(&f.tickets, "SET NX", err) // OOM, READONLY after a failover, …
			ok = false
		}
	}
	reads := make(map[int64]read, len(rep.reads))
	for i, c := range rep.reads {
		s := first + int64(i)
		v, err := c.Bytes()
		switch {
		case err == nil:
			reads[s] = read{val: v}
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			reads[s] = read{wrongType: true}
		default:
			f.failed(&f.tickets, "GETRANGE", err)
			ok = false
		}
	}
	if ok {
		f.succeeded(&f.tickets)
	}
	return reads, ok
}

// repair writes again, under the slots' names, the keys this member knows
// that Redis lost or holds spoiled (and, for the current and next slots, a
// key of its own if it knows none), and updates reads with what is there
// after. It reports whether Redis answered.
func (r *rotator) repair(ctx context.Context, now time.Time, cur int64, reads map[int64]read, offer map[int64][]byte) bool {
	f := r.f
	var fix []int64
	for s, rd := range reads {
		if _, ours := offer[s]; !ours || !r.expiry(s).After(now) {
			continue // nothing to offer: a spoiled value is ignored (and logged)
		}
		if rd.wrongType || len(rd.val) == 0 || r.open(s, rd) == nil {
			fix = append(fix, s)
		}
	}
	if len(fix) == 0 {
		return true
	}
	slices.Sort(fix)
	cmds, err := do(f, ctx, &f.tickets, "EVAL", func(ctx context.Context) ([]*redis.Cmd, error) {
		var cmds []*redis.Cmd
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, s := range fix {
				name := r.name(s)
				seen := ""
				if !reads[s].wrongType {
					seen = string(reads[s].val)
				}
				cmds = append(cmds, repairScript.Eval(ctx, p, []string{name},
					seen, f.ticket.seal(name, offer[s]), r.expiry(s).UnixMilli(), maxTicketValue))
			}
			return nil
		})
		var rerr redis.Error
		if errors.As(err, &rerr) {
			err = nil
		}
		return cmds, err
	})
	if err != nil {
		return false
	}
	for i, c := range cmds {
		v, err := c.Text()
		if err != nil {
			f.failed(&f.tickets, "EVAL", err)
			return false
		}
		reads[fix[i]] = read{val: []byte(v)}
	}
	return true
}

// open returns the key sealed in what slot s's name held, or nil: for
// nothing there, or junk (which it logs).
func (r *rotator) open(s int64, rd read) []byte {
	if len(rd.val) == 0 && !rd.wrongType {
		return nil
	}
	name := r.name(s)
	var k []byte
	err := errors.New("a value of another type")
	if !rd.wrongType {
		k, err = r.f.ticket.open(name, rd.val)
		if err == nil && len(k) != ticketKeySize {
			err = errors.New("not a ticket key")
		}
	}
	if err != nil {
		r.f.junk(&r.f.tickets, name, err)
		return nil
	}
	return k
}

// known returns the keys of slot s, creating an empty entry. r.mu is held.
func (r *rotator) known(s int64) *slotKeys {
	sk := r.slots[s]
	if sk == nil {
		sk = &slotKeys{}
		r.slots[s] = sk
	}
	return sk
}

// ringAt returns the keys to install at now, the encrypting key first, then
// the likeliest to decrypt: the previous slot's, the next slot's, then
// older ones. It makes a local key for the current slot if the fleet's is
// unknown, and forgets slots too old to matter. r.mu is held.
func (r *rotator) ringAt(now time.Time) [][]byte {
	cur := r.slot(now)
	first := cur - r.kept()
	for s := range r.slots {
		if s < first {
			delete(r.slots, s)
		}
	}
	c := r.known(cur)
	enc := c.fleet
	if enc == nil {
		if c.local == nil {
			c.local = newTicketKey()
		}
		enc = c.local
	}
	ring := [][]byte{enc}
	addSlot := func(s int64) {
		sk := r.slots[s]
		if sk == nil {
			return
		}
		for _, k := range append([][]byte{sk.fleet, sk.local}, sk.old...) {
			if k != nil && !slices.ContainsFunc(ring, func(x []byte) bool { return bytes.Equal(x, k) }) {
				ring = append(ring, k)
			}
		}
	}
	addSlot(cur)
	addSlot(cur - 1)
	addSlot(cur + 1)
	for s := cur - 2; s >= first; s-- {
		addSlot(s)
	}
	return ring
}

// install gives every server the ring for now, if it changed.
func (r *rotator) install(now time.Time) {
	f := r.f
	r.mu.Lock()
	ring := r.ringAt(now)
	cur := r.slot(now)
	local := r.slots[cur].fleet == nil
	f.stats.mu.Lock()
	f.stats.encSlot, f.stats.encLocal = cur, local
	if len(r.ring) == 0 || !bytes.Equal(ring[0], r.ring[0]) {
		f.stats.lastRotation = now
	}
	f.stats.mu.Unlock()
	if slices.EqualFunc(ring, r.ring, bytes.Equal) {
		r.mu.Unlock()
		return
	}
	if len(r.ring) > 0 && !bytes.Equal(ring[0], r.ring[0]) {
		f.metrics.rotations.Add(context.Background(), 1, f.metrics.none...)
	}
	r.ring = ring
	servers := make([]*tlsserver.Server, 0, len(r.servers))
	for s := range r.servers {
		servers = append(servers, s)
	}
	r.mu.Unlock()
	for _, s := range servers {
		if err := s.SetTicketKeys(ring...); err != nil {
			f.log.Error("fleet: installing ticket keys", "err", err)
		}
	}
}

// give installs the current keys on srv, a server just registered. (It
// leaves r.ring, what every server has, to install.)
func (r *rotator) give(srv *tlsserver.Server) {
	r.mu.Lock()
	ring := r.ringAt(r.f.now())
	r.mu.Unlock()
	if err := srv.SetTicketKeys(ring...); err != nil {
		r.f.log.Error("fleet: installing ticket keys", "err", err)
	}
}

func (r *rotator) remove(srv *tlsserver.Server) {
	r.mu.Lock()
	delete(r.servers, srv)
	r.mu.Unlock()
}

// pollInterval is how often a member reads the fleet's keys: several
// times a slot, so that the next slot's key reaches every member well
// before it is used, and at most a minute apart.
func (r *rotator) pollInterval() time.Duration { return min(r.f.period/4, time.Minute) }

// retryInterval is the poll interval after a poll that failed.
const retryInterval = 5 * time.Second

// loop keeps the servers' keys current until the Fleet closes or no server
// is left.
func (r *rotator) loop() {
	f := r.f
	t := f.clock.NewTimer()
	defer t.Stop()
	for {
		f.mu.Lock() // TicketKeys registers servers under it
		r.mu.Lock()
		n, synced := len(r.servers), r.synced
		r.mu.Unlock()
		if n == 0 {
			if f.rot == r {
				f.rot = nil
			}
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		now := f.now()
		poll := r.pollInterval()
		if !synced {
			poll = min(poll, retryInterval)
		}
		wait := poll + backoff.Jitter(poll/10)
		boundary := r.start(r.slot(now) + 1).Sub(now)
		atBoundary := boundary < wait
		if atBoundary {
			wait = boundary
		}
		t.Reset(wait)
		select {
		case <-f.done:
			return
		case <-t.C():
		}
		now = f.now()
		if atBoundary {
			r.install(now) // the announced key, without waiting for Redis
			continue
		}
		r.sync(nil, now)
		r.install(now)
	}
}

func newTicketKey() []byte { return randomBytes(ticketKeySize) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
