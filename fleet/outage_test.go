package fleet_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
)

// Redis stopped, hung, or restarted empty costs resumption, never a
// handshake; afterwards the fleet resumes across members again within a
// poll (tickets) or a probe (sessions).
func TestRedisOutage(t *testing.T) {
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	const period = time.Hour
	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			rs, _ := startRedis(t)
			// A client that does not apply context deadlines to its socket,
			// with a read timeout longer than the servers' handshake timeout:
			// only the fleet's own deadline keeps a hung Redis from failing
			// handshakes.
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, ReadTimeout: 20 * time.Second, MaxRetries: -1})
			t.Cleanup(func() { rdb.Close() })
			clk := fleet.NewFakeClock(time.Now().Truncate(period).Add(period / 2))
			var ms []*member
			var fls []*fleet.Fleet
			for range 3 {
				m := startMember(t, rdb, memberOptions{sessions: mode == "sessions", cert: cert, clock: clk})
				ms = append(ms, m)
				fls = append(fls, m.fl)
			}
			round := func() (resumed int) {
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
			if n := round(); n != 2 {
				t.Fatalf("before the outage %d of 2 cross-member handshakes resumed", n)
			}

			must(t, rs.Pause())
			for range 3 {
				round() // must not fail: connect fails the test
			}
			must(t, rs.Resume())

			rs.Stop()
			for range 3 {
				round()
			}
			if mode == "tickets" {
				// Past the announced key, still without Redis: each member
				// encrypts with a key of its own.
				for range 2 {
					crossTo(t, clk, period, ms...)
				}
				round()
			}

			must(t, rs.Restart()) // empty: sessions and keys are gone
			if mode == "tickets" {
				polls(t, clk, 6*time.Second, fls...)
			} else {
				testenv.WaitFor(t, func() bool { // the probes find Redis again
					for _, fl := range fls {
						if !fl.Stats().RedisReachable {
							clk.Advance(time.Second)
							return false
						}
					}
					return true
				})
			}
			if n := round(); n != 2 {
				t.Fatalf("after Redis restarted, %d of 2 cross-member handshakes resumed", n)
			}
		})
	}
}

// A caller's cancelled context is not a Redis outage: Store calls and a
// TicketKeys whose context is cancelled (a Fetcher closed during a rolling
// reload) leave the fleet using Redis, logging nothing, so the Fetcher
// that replaces the closed one adopts the staple from Redis instead of
// asking the responder.
func TestCancelledContextIsNotAnOutage(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	a := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"a.test"}, OCSPServer: []string{r.URL}})
	b := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"b.test"}, OCSPServer: []string{r.URL}})
	r.Add(a, b)
	logs := &syncBuffer{}
	fl := newFleet(t, fleet.Options{Redis: rdb, Secret: secret, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	newFetcher := func() *ocspfetch.Fetcher {
		f, err := ocspfetch.New(ocspfetch.Options{Store: fl.Store(), HTTPClient: r.Client})
		must(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	old := newFetcher()
	if _, err := old.Staple(t.Context(), a.DER, ca.DER); err != nil {
		t.Fatal(err)
	}
	// The reload: the old Fetcher is closed while it fetches b.
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		old.Staple(context.Background(), b.DER, ca.DER)
	}()
	testenv.WaitFor(t, func() bool { return len(old.Certificates()) == 2 })
	old.Close()
	<-asked
	// Every call of the Store and TicketKeys with a cancelled context.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	store := fl.Store()
	store.Load(cancelled, "k")
	store.Store(cancelled, "k", []byte("x"), time.Now().Add(time.Hour))
	store.Delete(cancelled, "k")
	store.Lock(cancelled, "k", time.Second)
	detach, err := fl.TicketKeys(cancelled, newServer(t, a.TLSCertificate(true)))
	must(t, err)
	defer detach()
	if st := fl.Stats(); !st.RedisReachable || st.LastError != nil {
		t.Errorf("after cancelled calls: %+v", st)
	}
	if strings.Contains(logs.String(), "Redis unavailable") {
		t.Errorf("a caller's cancellation was logged as an outage:\n%s", logs)
	}
	dials := r.Dials()
	next := newFetcher()
	if _, err := next.Staple(t.Context(), a.DER, ca.DER); err != nil {
		t.Fatal(err)
	}
	if st := next.Stats(); st.Loaded != 1 || r.Dials() != dials {
		t.Errorf("the new Fetcher asked the responder (Loaded %d, %d more requests) instead of adopting the staple in Redis", st.Loaded, r.Dials()-dials)
	}
}

// Close returns, bounded by the fleet's own deadlines, even with a client
// that ignores context deadlines and never times out a read (ReadTimeout
// -1) while Redis hangs; it says that it abandoned the calls in flight.
func TestCloseWithHungRedis(t *testing.T) {
	rs, _ := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, ReadTimeout: -1, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	fl, err := fleet.New(fleet.Options{Redis: rdb, Secret: secret})
	must(t, err)
	ca := testpki.NewCA(t, "fleet CA")
	srv := newServer(t, ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true))
	must(t, rs.Pause())
	t.Cleanup(func() { rs.Resume() }) // lets the abandoned calls end before goleak looks
	if _, err := fl.TicketKeys(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- fl.Close() }()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "abandoned") {
			t.Errorf("Close with a call stuck in the client: %v, want an error saying it was abandoned", err)
		}
	case <-time.After(10 * time.Second):
		rs.Resume()
		<-closed
		t.Fatal("Close did not return while Redis hung (it returned once Redis answered)")
	}
	if _, err := fl.TicketKeys(context.Background(), srv); !errors.Is(err, fleet.ErrClosed) {
		t.Errorf("TicketKeys after Close: %v", err)
	}
}

// In session-store mode, once a hung Redis is noticed, handshakes make no
// Redis call at all: the fleet probes Redis in the background, once a
// second, and lets sessions through again when a probe succeeds.
func TestSessionProbeOffHandshakePath(t *testing.T) {
	rs, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	reader := metrictest.New(t)
	clk := fleet.NewFakeClock(time.Now())
	m := startMember(t, rdb, memberOptions{sessions: true, cert: cert, clock: clk, fleet: fleet.Options{MeterProvider: reader.Provider}})
	handshakeOps := func() uint64 {
		var n uint64
		for _, op := range []string{"GETRANGE", "SET"} {
			c, _ := reader.Collect(t).Histogram("tlsemit.fleet.redis.operation.duration", "tlsemit.fleet.feature=sessions", "db.operation.name="+op)
			n += c
		}
		return n
	}
	c := newClient(ca, tls.VersionTLS13)
	c.connect(t, m.addr)
	if !c.connect(t, m.addr) {
		t.Fatal("no resumption through the session store")
	}

	must(t, rs.Pause())
	c.connect(t, m.addr) // notices the outage
	if m.fl.Stats().RedisReachable {
		t.Fatal("a hung Redis not noticed")
	}
	before := handshakeOps()
	for range 5 { // five seconds of the fleet's clock
		clk.Advance(time.Second)
		for range 3 {
			c.connect(t, m.addr)
		}
	}
	if n := handshakeOps() - before; n != 0 {
		t.Errorf("%d Redis calls made by handshakes during the outage: the probe runs on the handshake path", n)
	}
	must(t, rs.Resume())
	testenv.WaitFor(t, func() bool {
		if m.fl.Stats().RedisReachable {
			return true
		}
		clk.Advance(time.Second)
		return false
	})
	c.connect(t, m.addr)
	if !c.connect(t, m.addr) {
		t.Error("no resumption after the probe found Redis again")
	}
}

// A failover seen from the members: their Redis is demoted to a replica
// of an empty primary (it answers READONLY to every write and loses its
// data), then promoted again. Every handshake succeeds throughout; the
// errors are not silent (Stats, as the status page shows them); once it
// takes writes again, cross-member resumption returns.
func TestRedisDemotedPrimary(t *testing.T) {
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	ctx := context.Background()
	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			_, rdb := startRedis(t)
			other, _ := startRedis(t) // the new primary, empty
			clk := fleet.NewFakeClock(time.Now())
			var ms []*member
			var fls []*fleet.Fleet
			for range 3 {
				m := startMember(t, rdb, memberOptions{sessions: mode == "sessions", cert: cert, clock: clk})
				ms, fls = append(ms, m), append(fls, m.fl)
			}
			round := func() (resumed int) {
				c := newClient(ca, tls.VersionTLS13)
				c.connect(t, ms[0].addr)
				for _, m := range ms[1:] {
					if c.connect(t, m.addr) {
						resumed++
					}
				}
				return resumed
			}
			if n := round(); n != 2 {
				t.Fatalf("before the failover %d of 2 cross-member handshakes resumed", n)
			}
			host, port, _ := strings.Cut(other.Addr, ":")
			must(t, rdb.Do(ctx, "REPLICAOF", host, port).Err())
			testenv.WaitFor(t, func() bool { return redis.HasErrorPrefix(rdb.Set(ctx, "probe", "x", 0).Err(), "READONLY") })
			if mode == "tickets" {
				polls(t, clk, 20*time.Second, fls...)
			}
			round() // must not fail: connect fails the test
			for i, fl := range fls {
				st := fl.Stats()
				if mode == "sessions" && i > 0 {
					continue // only the first member wrote a session
				}
				if st.RedisReachable || st.LastError == nil || !strings.Contains(st.LastError.Error(), "READONLY") {
					t.Errorf("member %d during the failover: %+v", i, st)
				}
			}
			must(t, rdb.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
			if mode == "tickets" {
				polls(t, clk, 20*time.Second, fls...) // the keys written back
			} else {
				testenv.WaitFor(t, func() bool { // the probes find Redis writable
					for _, fl := range fls {
						if !fl.Stats().RedisReachable {
							clk.Advance(time.Second)
							return false
						}
					}
					return true
				})
			}
			if n := round(); n != 2 {
				t.Errorf("after the failover %d of 2 cross-member handshakes resumed", n)
			}
		})
	}
}
