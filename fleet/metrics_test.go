package fleet_test

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// The fleet's metrics, read back through the OpenTelemetry SDK as an
// exporter would: Redis operations by feature and command, staples adopted
// from another member, ticket-key rotations, and errors while Redis is
// down.
func TestMetrics(t *testing.T) {
	rs, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{r.URL}})
	r.Add(leaf)
	cert := leaf.TLSCertificate(true)

	readers := []*metrictest.Reader{metrictest.New(t), metrictest.New(t)}
	clk := fleet.NewFakeClock(time.Now())
	var fls []*fleet.Fleet
	var ss []*stapler
	for _, rd := range readers {
		fl := newFleet(t, fleet.Options{Redis: rdb, Secret: secret, MeterProvider: rd.Provider})
		fleet.SetClock(fl, clk)
		fls = append(fls, fl)
		ss = append(ss, newStapler(t, fl, r.Client, cert))
	}
	// Member 0 fetches; member 1 adopts its staple from Redis.
	stapled(t, ss[0].addr, "localhost", ca)
	stapled(t, ss[1].addr, "localhost", ca)
	// Sessions on member 1, ticket keys on both.
	if _, err := fls[1].Sessions(ss[1].srv); err != nil {
		t.Fatal(err)
	}
	for i, fl := range fls {
		if _, err := fl.TicketKeys(t.Context(), ss[i].srv); err != nil {
			t.Fatal(err)
		}
	}
	withTickets := func() { // a client that takes tickets: the server writes a session
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(1)}
		conn, err := tls.Dial("tcp", ss[1].addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(conn)
		conn.Close()
	}
	withTickets()
	testenv.WaitFor(t, func() bool { return clk.Armed() >= 2 }) // both rotation loops wait
	clk.Set(clk.Now().Truncate(time.Hour).Add(time.Hour))       // a slot boundary
	testenv.WaitFor(t, func() bool { return readers[0].Collect(t).Has("tlsemit.fleet.ticket_key.rotations") })

	m0, m1 := readers[0].Collect(t), readers[1].Collect(t)
	if n := int64(0); m0.Has("tlsemit.fleet.staples.adopted") && func() bool { n = m0.Int("tlsemit.fleet.staples.adopted"); return n != 0 }() {
		t.Errorf("member 0 fetched the staple itself but reports %d adopted", n)
	}
	if n := m1.Int("tlsemit.fleet.staples.adopted"); n != 1 {
		t.Errorf("member 1 adopted %d staples, want 1: %s", n, m1.Points("tlsemit.fleet.staples.adopted"))
	}
	if n, _ := m0.Histogram("tlsemit.fleet.redis.operation.duration", "tlsemit.fleet.feature=staples", "db.operation.name=SET"); n < 2 {
		t.Errorf("member 0: %d staple SETs (the lock and the staple), want ≥ 2: %s", n, m0.Points("tlsemit.fleet.redis.operation.duration"))
	}
	if n, _ := m1.Histogram("tlsemit.fleet.redis.operation.duration", "tlsemit.fleet.feature=sessions", "db.operation.name=SET"); n != 1 {
		t.Errorf("member 1: %d session SETs, want 1: %s", n, m1.Points("tlsemit.fleet.redis.operation.duration"))
	}
	if n, _ := m1.Histogram("tlsemit.fleet.redis.operation.duration", "tlsemit.fleet.feature=ticket_keys"); n < 1 {
		t.Errorf("member 1: no ticket-key sync recorded: %s", m1.Points("tlsemit.fleet.redis.operation.duration"))
	}
	if !m0.Has("tlsemit.fleet.ticket_key.rotations") || m0.Int("tlsemit.fleet.ticket_key.rotations") < 1 {
		t.Errorf("member 0: no rotation counted after a boundary")
	}
	if s := m0.Scope("tlsemit.fleet.redis.operation.duration"); s != "github.com/tlsemit/tlsemit/fleet" {
		t.Errorf("meter %q", s)
	}
	if m1.Has("tlsemit.fleet.redis.errors") {
		t.Errorf("errors with Redis up: %s", m1.Points("tlsemit.fleet.redis.errors"))
	}

	// Redis down: the next session write fails, and is counted.
	rs.Stop()
	withTickets()
	m1 = readers[1].Collect(t)
	if n := m1.Int("tlsemit.fleet.redis.errors", "tlsemit.fleet.feature=sessions"); n < 1 {
		t.Errorf("no session error counted with Redis down: %s", m1.Points("tlsemit.fleet.redis.errors"))
	}
}
