package fleet

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// testClock is a hand-driven time for a Fleet and miniredis together.
type testClock struct {
	*FakeClock
	m *miniredis.Miniredis
}

func (c *testClock) now() time.Time { return c.Now() }

func (c *testClock) set(t time.Time) { c.Set(t) }

func newTestClock(m *miniredis.Miniredis, t time.Time) *testClock {
	c := &testClock{FakeClock: NewFakeClock(t), m: m}
	c.onSet = m.SetTime
	m.SetTime(t)
	return c
}

func rotatorsAt(t *testing.T, n int, opts Options) (*testClock, *miniredis.Miniredis, []*rotator, []*logBuffer) {
	t.Helper()
	m := miniredis.RunT(t)
	c := newTestClock(m, time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC))
	var rs []*rotator
	var logs []*logBuffer
	for range n {
		f, l := miniFleet(t, m, opts)
		f.clock = c
		rs = append(rs, newRotator(f))
		logs = append(logs, l)
	}
	return c, m, rs, logs
}

func ringOf(r *rotator, now time.Time) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ringAt(now)
}

var hourly = Options{TicketKeyPeriod: time.Hour, TicketLifetime: 3 * time.Hour}

func TestTicketKeysMembersAgree(t *testing.T) {
	c, m, rs, _ := rotatorsAt(t, 3, hourly)
	for _, r := range rs {
		if !r.sync(context.Background(), c.now()) {
			t.Fatal("sync failed against miniredis")
		}
	}
	want := ringOf(rs[0], c.now())
	// The current slot's key encrypts; the next slot's is already known.
	if len(want) != 2 {
		t.Fatalf("ring has %d keys, want 2 (current, next)", len(want))
	}
	for i, r := range rs[1:] {
		if got := ringOf(r, c.now()); !equalRings(got, want) {
			t.Errorf("member %d ring differs from member 0", i+1)
		}
	}
	for _, k := range want {
		if len(k) != ticketKeySize {
			t.Fatalf("key of %d bytes", len(k))
		}
	}
	// Every value in Redis is sealed: no key appears in the clear.
	for _, name := range m.Keys() {
		v, _ := m.Get(name)
		for _, k := range want {
			if strings.Contains(v, string(k)) {
				t.Fatalf("Redis value of %s holds a ticket key in the clear", name)
			}
		}
		if !strings.HasPrefix(name, "tlsemit:{ticket-keys}:") {
			t.Errorf("key %q outside the prefix and hash tag", name)
		}
	}
	// Expiry: a slot's key lives until TicketLifetime after the end of the
	// next slot.
	cur := rs[0].slot(c.now())
	if ttl, wantTTL := m.TTL(rs[0].name(cur)), rs[0].expiry(cur).Sub(c.now()); ttl != wantTTL {
		t.Errorf("TTL of the current key = %v, want %v", ttl, wantTTL)
	}

	// At the slot boundary a member switches to the announced key with no
	// Redis call at all.
	m.Close()
	next := rs[0].start(cur + 1)
	c.FakeClock.Set(next)
	for i, r := range rs {
		ring := ringOf(r, next)
		if !bytes.Equal(ring[0], want[1]) {
			t.Errorf("member %d: after the boundary the encrypting key is not the announced one", i)
		}
		if !bytes.Equal(ring[1], want[0]) {
			t.Errorf("member %d: the previous slot's key is not second", i)
		}
	}
}

func TestTicketKeysRingOrderAndRetention(t *testing.T) {
	c, _, rs, _ := rotatorsAt(t, 1, hourly)
	r := rs[0]
	start := c.now()
	keys := map[int64][]byte{}
	for h := range 6 {
		c.set(start.Add(time.Duration(h) * time.Hour))
		if !r.sync(context.Background(), c.now()) {
			t.Fatal("sync failed")
		}
		cur := r.slot(c.now())
		r.mu.Lock()
		keys[cur], keys[cur+1] = r.slots[cur].fleet, r.slots[cur+1].fleet
		r.mu.Unlock()
	}
	cur := r.slot(c.now())
	ring := ringOf(r, c.now())
	// kept() = 3: current, previous, next, then two older.
	want := [][]byte{keys[cur], keys[cur-1], keys[cur+1], keys[cur-2], keys[cur-3]}
	if !equalRings(ring, want) {
		t.Fatalf("ring order wrong: got %d keys, want current, previous, next, then older (%d)", len(ring), len(want))
	}
	r.mu.Lock()
	_, old := r.slots[cur-4]
	r.mu.Unlock()
	if old {
		t.Error("a slot older than TicketLifetime is still kept")
	}
	// A member that joins later reads the same older keys from Redis.
	f2, _ := miniFleet(t, c.m, hourly)
	f2.clock = c
	r2 := newRotator(f2)
	if !r2.sync(context.Background(), c.now()) {
		t.Fatal("sync failed")
	}
	if got := ringOf(r2, c.now()); !equalRings(got, want) {
		t.Error("a new member's ring differs from the old member's")
	}
}

func TestTicketKeysFallbackAndConvergence(t *testing.T) {
	c, m, rs, logs := rotatorsAt(t, 2, hourly)
	a, b := rs[0], rs[1]
	// Redis is down from the start: each member encrypts with a key of its
	// own, and says so once.
	m.Close()
	if a.sync(context.Background(), c.now()) || b.sync(context.Background(), c.now()) {
		t.Fatal("sync succeeded with Redis down")
	}
	la, lb := ringOf(a, c.now()), ringOf(b, c.now())
	if len(la) != 1 || len(lb) != 1 || bytes.Equal(la[0], lb[0]) {
		t.Fatal("with Redis down each member should have one local key of its own")
	}
	a.sync(context.Background(), c.now())
	if n := strings.Count(logs[0].String(), "Redis unavailable"); n != 1 {
		t.Errorf("outage logged %d times, want once:\n%s", n, logs[0])
	}
	// Redis returns: the first member to sync offers its local key for the
	// slot nobody created, and the other adopts it.
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if !a.sync(context.Background(), c.now()) || !b.sync(context.Background(), c.now()) {
		t.Fatal("sync failed after Redis returned")
	}
	ra, rb := ringOf(a, c.now()), ringOf(b, c.now())
	if !bytes.Equal(ra[0], la[0]) {
		t.Error("member a did not keep its local key, which the fleet adopted")
	}
	if !bytes.Equal(rb[0], la[0]) {
		t.Error("member b did not adopt the fleet's key")
	}
	// b still decrypts the tickets it issued alone.
	if !containsKey(rb, lb[0]) {
		t.Error("member b dropped its local key: its outage tickets no longer resume")
	}
	if !strings.Contains(logs[0].String(), "Redis answers again") {
		t.Errorf("recovery not logged:\n%s", logs[0])
	}
}

func TestTicketKeysJunkIsReplaced(t *testing.T) {
	c, m, rs, logs := rotatorsAt(t, 2, hourly)
	a, b := rs[0], rs[1]
	cur := a.slot(c.now())
	m.Set(a.name(cur), "garbage")
	m.Set(a.name(cur-1), "\x01truncated")
	if !a.sync(context.Background(), c.now()) || !b.sync(context.Background(), c.now()) {
		t.Fatal("sync failed")
	}
	ra, rb := ringOf(a, c.now()), ringOf(b, c.now())
	if !equalRings(ra, rb) || len(ra) != 2 {
		t.Fatalf("members disagree after junk was replaced (%d, %d keys)", len(ra), len(rb))
	}
	if !strings.Contains(logs[0].String(), "ignoring unreadable value") {
		t.Errorf("junk not logged:\n%s", logs[0])
	}
}

func TestTicketKeysSecretsDoNotMix(t *testing.T) {
	m := miniredis.RunT(t)
	c := newTestClock(m, time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC))
	fa, logsA := miniFleet(t, m, hourly)
	opts := hourly
	opts.Secret = bytes.Repeat([]byte("x"), 32)
	fb, logsB := miniFleet(t, m, opts)
	fa.clock, fb.clock = c, c
	a, b := newRotator(fa), newRotator(fb)
	for range 2 {
		if !a.sync(context.Background(), c.now()) || !b.sync(context.Background(), c.now()) {
			t.Fatal("sync failed")
		}
	}
	if a.name(1) == b.name(1) {
		t.Fatal("two secrets share key names")
	}
	if bytes.Equal(ringOf(a, c.now())[0], ringOf(b, c.now())[0]) {
		t.Error("two fleets share a ticket key")
	}
	if strings.Contains(logsA.String()+logsB.String(), "unreadable") {
		t.Errorf("one fleet's keys disturbed the other:\n%s\n%s", logsA, logsB)
	}
}

func equalRings(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func containsKey(ring [][]byte, k []byte) bool {
	for _, x := range ring {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}
