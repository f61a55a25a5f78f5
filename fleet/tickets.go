package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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
// When Redis cannot be reached the member keeps the keys it knows,
// switching to the announced next key on time, and beyond them encrypts
// with a key of its own (tickets then resume on this member only); once
// Redis answers it adopts the fleet's keys again within one poll, and
// offers its own key for a slot nobody has created.
//
// TicketKeys waits, within ctx, for the first answer from Redis; without
// one it starts on the fallback and keeps trying. The error is non-nil
// only for a closed Fleet or a nil srv. stop stops updating srv's keys,
// which it keeps; Close stops every server's.
func (f *Fleet) TicketKeys(ctx context.Context, srv *tlsserver.Server) (stop func(), err error) {
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
	if fresh && !f.goTracked(r.loop) {
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
}

// slotKeys are the keys a member knows for one slot: the fleet's, and one
// it made itself while Redis was away.
type slotKeys struct {
	fleet, local []byte
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
// ticket key in one Cluster slot, so one MGET reads them; the period is
// part of the name, so that members configured differently during a
// rolling change do not read one slot number two ways.
func (r *rotator) name(slot int64) string {
	return fmt.Sprintf("%s{ticket-keys}:%s:%d:%d", r.f.prefix, r.id, r.f.period.Milliseconds(), slot)
}

// expiry is when Redis may forget a slot's key: once its last ticket, issued
// by the end of the slot (give or take a period of clock skew), is past
// TicketLifetime.
func (r *rotator) expiry(slot int64) time.Time {
	return r.start(slot + 2).Add(r.f.life)
}

// sync reads the fleet's keys for the slots around now, creating the
// current and next slots' keys if nobody has. It reports whether Redis
// answered.
func (r *rotator) sync(ctx context.Context, now time.Time) bool {
	f := r.f
	cur := r.slot(now)
	first := cur - r.kept()
	r.mu.Lock()
	candidates := map[int64][]byte{}
	for _, s := range []int64{cur, cur + 1} {
		k := r.known(s).local
		if k == nil {
			k = newTicketKey()
		}
		candidates[s] = k
	}
	r.mu.Unlock()

	type reply struct {
		created []*redis.StatusCmd // cur, cur+1
		older   *redis.SliceCmd
	}
	rep, err := do(f, &f.tickets, "PIPELINE", func(opCtx context.Context) (reply, error) {
		ctx, cancel := mergeDone(opCtx, ctx)
		defer cancel()
		var rep reply
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, s := range []int64{cur, cur + 1} {
				name := r.name(s)
				rep.created = append(rep.created, p.SetArgs(ctx, name, f.ticket.seal(name, candidates[s]),
					redis.SetArgs{Mode: "NX", Get: true, ExpireAt: r.expiry(s)}))
			}
			if first < cur {
				names := make([]string, 0, cur-first)
				for s := first; s < cur; s++ {
					names = append(names, r.name(s))
				}
				rep.older = p.MGet(ctx, names...)
			}
			return nil
		})
		if errors.Is(err, redis.Nil) {
			err = nil // a key that SET NX created: read per command below
		}
		return rep, err
	})
	if err != nil {
		f.failed(&f.tickets, "ticket keys", err)
		r.mu.Lock()
		r.synced = false
		r.mu.Unlock()
		return false
	}
	f.succeeded(&f.tickets)

	found := map[int64][]byte{}
	var overwrite []int64
	for i, cmd := range rep.created {
		s := cur + int64(i)
		old, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			found[s] = candidates[s] // ours is the fleet's now
		case err != nil:
			f.failed(&f.tickets, "SET NX", err)
		default:
			if k := r.open(s, old); k != nil {
				found[s] = k
			} else {
				overwrite = append(overwrite, s)
			}
		}
	}
	if rep.older != nil {
		vals, _ := rep.older.Result()
		for i, v := range vals {
			s := first + int64(i)
			if str, ok := v.(string); ok {
				if k := r.open(s, str); k != nil {
					found[s] = k
				}
			}
		}
	}
	// A value that does not open under our name is junk (nothing a member
	// of this fleet wrote): replace it, or the slot would have no fleet key.
	for _, s := range overwrite {
		name := r.name(s)
		_, err := do(f, &f.tickets, "SET", func(ctx context.Context) (string, error) {
			return f.rdb.Set(ctx, name, f.ticket.seal(name, candidates[s]), time.Until(r.expiry(s))).Result()
		})
		if err == nil {
			found[s] = candidates[s]
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = true
	for s, k := range found {
		sk := r.known(s)
		sk.fleet = k
		if sk.local != nil && bytes.Equal(sk.local, k) {
			sk.local = nil // the fleet adopted our key
		}
	}
	return true
}

// open returns the key sealed in value for slot s, or nil.
func (r *rotator) open(s int64, value string) []byte {
	name := r.name(s)
	k, err := r.f.ticket.open(name, []byte(value))
	if err == nil && len(k) != ticketKeySize {
		err = errors.New("not a ticket key")
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
		if sk := r.slots[s]; sk != nil {
			for _, k := range [][]byte{sk.fleet, sk.local} {
				if k != nil && !slices.ContainsFunc(ring, func(x []byte) bool { return bytes.Equal(x, k) }) {
					ring = append(ring, k)
				}
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
	r.mu.Lock()
	ring := r.ringAt(now)
	if slices.EqualFunc(ring, r.ring, bytes.Equal) {
		r.mu.Unlock()
		return
	}
	if len(r.ring) > 0 && !bytes.Equal(ring[0], r.ring[0]) {
		r.f.metrics.rotations.Add(context.Background(), 1, r.f.metrics.none...)
	}
	r.ring = ring
	servers := make([]*tlsserver.Server, 0, len(r.servers))
	for s := range r.servers {
		servers = append(servers, s)
	}
	r.mu.Unlock()
	for _, s := range servers {
		if err := s.SetTicketKeys(ring...); err != nil {
			r.f.log.Error("fleet: installing ticket keys", "err", err)
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

// loop keeps the servers' keys current until the Fleet closes or no server
// is left.
func (r *rotator) loop() {
	f := r.f
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
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
			poll = min(poll, 5*time.Second)
		}
		wait := poll + jitter(poll/10)
		boundary := r.start(r.slot(now) + 1).Sub(now)
		atBoundary := boundary < wait
		if atBoundary {
			wait = boundary
		}
		t.Reset(wait)
		select {
		case <-f.done:
			return
		case <-t.C:
		}
		now = f.now()
		if atBoundary {
			r.install(now) // the announced key, without waiting for Redis
			continue
		}
		r.sync(context.Background(), now)
		r.install(now)
	}
}

func newTicketKey() []byte { return randomBytes(ticketKeySize) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// jitter returns a uniform duration in [-d, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(2*d)+1)) - d
}

// mergeDone returns a context that ends when either a or b does.
func mergeDone(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
