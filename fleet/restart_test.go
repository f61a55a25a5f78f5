package fleet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// rotationFleet is three ticket-key members on one fake clock, hourly
// slots, against a real redis-server.
type rotationFleet struct {
	ca    *testpki.CA
	cert  tls.Certificate
	rdb   redis.UniversalClient
	clk   *fleet.FakeClock
	ms    []*member
	start func() *member // another member, on the same clock
}

const hour = time.Hour

func newRotationFleet(t *testing.T, rdb redis.UniversalClient) *rotationFleet {
	ca := testpki.NewCA(t, "fleet CA")
	rf := &rotationFleet{ca: ca, cert: ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true), rdb: rdb,
		clk: fleet.NewFakeClock(time.Now().Truncate(hour).Add(10 * time.Minute))}
	rf.start = func() *member {
		return startMember(t, rdb, memberOptions{cert: rf.cert, clock: rf.clk})
	}
	for range 3 {
		rf.ms = append(rf.ms, rf.start())
	}
	return rf
}

func (rf *rotationFleet) fleets() []*fleet.Fleet {
	var fls []*fleet.Fleet
	for _, m := range rf.ms {
		fls = append(fls, m.fl)
	}
	return fls
}

// poll makes every member read Redis once more.
func (rf *rotationFleet) poll(t *testing.T) { polls(t, rf.clk, 17*time.Minute, rf.fleets()...) }

// agree checks that every member in ms encrypts with want.
func agree(t *testing.T, what string, want []byte, ms ...*member) {
	t.Helper()
	for i, m := range ms {
		if !bytes.Equal(m.srv.TicketKeys(), want) {
			t.Errorf("%s: member %d encrypts with another key than the fleet's", what, i)
		}
	}
}

// ticketsFrom returns n clients, each holding a TLS 1.3 ticket issued by m.
func ticketsFrom(t *testing.T, ca *testpki.CA, m *member, n int) []*client {
	var cs []*client
	for range n {
		c := newClient(ca, tls.VersionTLS13)
		c.connect(t, m.addr)
		cs = append(cs, c)
	}
	return cs
}

// Redis restarted empty: docs/fleet.md promises that ticket keys "are
// created again from each member's known keys". Every ticket issued before
// the restart, in this slot and the previous one, still resumes on every
// member; the members keep encrypting with the one key they agreed on; and
// a member that joins after the restart reads the same keys back.
func TestTicketKeysSurviveRedisRestart(t *testing.T) {
	rs, rdb := startRedis(t)
	rf := newRotationFleet(t, rdb)
	ms := rf.ms
	previous := ticketsFrom(t, rf.ca, ms[0], 4) // issued in the previous slot
	crossTo(t, rf.clk, hour, ms...)
	key := ms[0].srv.TicketKeys()
	agree(t, "before the restart", key, ms...)
	current := ticketsFrom(t, rf.ca, ms[1], 3)

	must(t, rs.Restart()) // empty
	rf.poll(t)
	agree(t, "after Redis restarted empty", key, ms...)
	for i, c := range current {
		if !c.connect(t, ms[(i+2)%3].addr) {
			t.Errorf("a ticket of this slot, issued before the restart, no longer resumes on member %d", (i+2)%3)
		}
	}
	late := rf.start()
	agree(t, "a member started after the restart", key, late)
	for i, m := range append(ms, late) {
		if !previous[i].connect(t, m.addr) {
			t.Errorf("a ticket of the previous slot no longer resumes on member %d after the restart", i)
		}
	}
}

// A key spoiled in Redis (junk that does not open, a value of another type,
// or evicted) under the current or the next slot's name: the members put
// the key they agreed on back, keep encrypting with it, and move to one
// next key together at the boundary. A wrong-typed value does not fail
// every poll, and is not an outage.
func TestTicketKeysSpoiledInRedis(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	for _, spoil := range []string{"junk", "wrong type", "evicted", "oversized"} {
		t.Run(spoil, func(t *testing.T) {
			must(t, rdb.FlushAll(ctx).Err())
			rf := newRotationFleet(t, rdb)
			ms := rf.ms
			key := ms[0].srv.TicketKeys()
			agree(t, "at the start", key, ms...)
			tickets := ticketsFrom(t, rf.ca, ms[0], 3)
			cur := fleet.Slot(ms[0].fl, rf.clk.Now())
			for _, s := range []int64{cur, cur + 1} {
				name := fleet.TicketKeyName(ms[0].fl, s)
				var err error
				switch spoil {
				case "junk":
					err = rdb.Set(ctx, name, "\x01not a sealed key", 0).Err()
				case "wrong type":
					if err = rdb.Del(ctx, name).Err(); err == nil {
						err = rdb.RPush(ctx, name, "a", "list").Err()
					}
				case "evicted":
					err = rdb.Del(ctx, name).Err()
				case "oversized":
					err = rdb.Set(ctx, name, strings.Repeat("x", 1<<20), 0).Err()
				}
				must(t, err)
			}
			rf.poll(t)
			agree(t, "after the poll", key, ms...)
			for i, c := range tickets {
				if !c.connect(t, ms[i].addr) {
					t.Errorf("a ticket issued before the key was spoiled no longer resumes on member %d", i)
				}
			}
			for i, m := range ms {
				if st := m.fl.Stats(); !st.RedisReachable || st.TicketKeyLocal {
					t.Errorf("member %d: %+v: a spoiled value counted as an outage", i, st)
				}
			}
			// The next slot's key was put back too: every member moves to
			// the same one.
			crossTo(t, rf.clk, hour, ms...)
			next := ms[0].srv.TicketKeys()
			agree(t, "in the next slot", next, ms...)
			agree(t, "a member started later", next, rf.start())
		})
	}
}

// Ticket-key reads are bounded, as session reads are: a huge value under an
// older slot's name is not read whole.
func TestTicketKeyReadsBounded(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	rf := newRotationFleet(t, rdb)
	cur := fleet.Slot(rf.ms[0].fl, rf.clk.Now())
	const huge = 8 << 20
	for _, s := range []int64{cur - 1, cur - 2} {
		must(t, rdb.Set(ctx, fleet.TicketKeyName(rf.ms[0].fl, s), strings.Repeat("x", huge), 0).Err())
	}
	sent := func() int64 {
		info, err := rdb.Info(ctx, "stats").Result()
		must(t, err)
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				must(t, err)
				return n
			}
		}
		t.Fatalf("no total_net_output_bytes in INFO:\n%s", info)
		return 0
	}
	before := sent()
	rf.poll(t)
	if n := sent() - before; n > 1<<20 {
		t.Errorf("3 members' polls took %d bytes from Redis with two %d-byte values under older slots' names: reads are not bounded", n, huge)
	}
}
