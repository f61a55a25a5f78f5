package fleet_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Redis stopped, hung, or restarted empty costs resumption, never a
// handshake; afterwards the fleet resumes across members again within one
// TicketKeyPeriod.
func TestRedisOutage(t *testing.T) {
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	const period = 2 * time.Second
	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			rs, _ := startRedis(t)
			// A client that does not apply context deadlines to its socket,
			// with a read timeout longer than the servers' handshake timeout:
			// only the fleet's own deadline keeps a hung Redis from failing
			// handshakes.
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, ReadTimeout: 20 * time.Second, MaxRetries: -1})
			t.Cleanup(func() { rdb.Close() })
			var ms []*member
			for range 3 {
				m := startMember(t, rdb, memberOptions{
					sessions: mode == "sessions", cert: cert,
					fleet: fleet.Options{TicketKeyPeriod: period, TicketLifetime: 3 * period},
				})
				ms = append(ms, m)
			}
			round := func(_ string) (resumed int) {
				t.Helper()
				c := newClient(ca, tls.VersionTLS13)
				c.connect(t, ms[0].addr)
				for _, m := range ms[1:] {
					if c.connect(t, m.addr) {
						resumed++
					}
				}
				return resumed
			}
			if n := round("before"); n != 2 {
				t.Fatalf("before the outage %d of 2 cross-member handshakes resumed", n)
			}

			must(t, rs.Pause())
			for range 3 {
				round("hung") // must not fail: connect fails the test
			}
			must(t, rs.Resume())

			rs.Stop()
			for range 3 {
				round("stopped")
			}
			time.Sleep(period + period/2) // past a slot boundary, still without Redis
			round("stopped, next slot")

			must(t, rs.Restart()) // empty: sessions and keys are gone
			deadline := time.Now().Add(3 * period)
			for round("restarted") != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("cross-member resumption did not return within %v of Redis restarting", 3*period)
				}
				time.Sleep(period / 8)
			}
		})
	}
}
