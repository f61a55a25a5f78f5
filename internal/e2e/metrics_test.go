package e2e_test

import (
	"math"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// TestMetricsEndToEnd: a server and a Fetcher sharing one OpenTelemetry
// SDK (manual reader), real TLS handshakes, the real `openssl ocsp`
// responder. Cold, warm, revoked, responder down: the collected values
// say what happened, and a staple's age grows and its time left shrinks
// as the Fetcher's clock moves.
func TestMetricsEndToEnd(t *testing.T) {
	ca := testpki.NewCA(t, "metrics CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 5})
	good := realLeaf(t, ca, r, "localhost")
	revoked := realLeaf(t, ca, r, "revoked.test")
	down := realLeaf(t, ca, r, "down.test")
	r.Revoke(revoked)

	m := metrictest.New(t)
	clk := testclock.New()
	f, rec := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client, Now: clk.Now, MeterProvider: m.Provider})
	s := newStapling(t, f, good, map[string]*testpki.Leaf{"revoked.test": revoked, "down.test": down},
		func(o *tlsserver.Options) { o.MeterProvider = m.Provider })
	cas := map[string]*testpki.CA{ca.Name: ca}
	goodAttrs := []string{"tlsemit.certificate.name=localhost", "tlsemit.certificate.serial=" + good.Serial()}

	// Cold: the Fetcher asks the responder within the handshake.
	checkStaple(t, dial(t, s.port, "localhost", ca.Pool()), cas)
	snap := m.Collect(t)
	if n := snap.Int("tlsemit.ocsp.responder.requests", "tlsemit.ocsp.status=good"); n != 1 {
		t.Fatalf("cold: %s", snap.Points("tlsemit.ocsp.responder.requests"))
	}
	if n, sum := snap.Histogram("tlsemit.ocsp.responder.request.duration", "tlsemit.ocsp.status=good"); n != 1 || sum <= 0 {
		t.Errorf("cold request duration: %s", snap.Points("tlsemit.ocsp.responder.request.duration"))
	}
	age0, ok1 := snap.Gauge("tlsemit.ocsp.staple.age", goodAttrs...)
	left0, ok2 := snap.Gauge("tlsemit.ocsp.staple.time_left", goodAttrs...)
	if !ok1 || !ok2 || age0 < 0 || age0 > 60 || left0 < 200 || left0 > 300 {
		t.Fatalf("staple gauges after the cold fetch (-nmin 5): age %v (%v), time left %v (%v)\n%s\n%s", age0, ok1, left0, ok2,
			snap.Points("tlsemit.ocsp.staple.age"), snap.Points("tlsemit.ocsp.staple.time_left"))
	}

	// Warm: from memory, the responder is not asked again.
	for range 2 {
		checkStaple(t, dial(t, s.port, "localhost", ca.Pool()), cas)
	}
	clk.Advance(40 * time.Second)
	snap = m.Collect(t)
	if got := snap.Int("tlsemit.ocsp.answers", "tlsemit.ocsp.status=good"); got != 3 {
		t.Errorf("good answers: %s", snap.Points("tlsemit.ocsp.answers"))
	}
	if got := snap.Int("tlsemit.ocsp.responder.requests"); got != 1 {
		t.Errorf("warm handshakes asked the responder: %s", snap.Points("tlsemit.ocsp.responder.requests"))
	}
	age1, _ := snap.Gauge("tlsemit.ocsp.staple.age", goodAttrs...)
	left1, _ := snap.Gauge("tlsemit.ocsp.staple.time_left", goodAttrs...)
	if math.Abs(age1-age0-40) > 1e-6 || math.Abs(left0-left1-40) > 1e-6 {
		t.Errorf("40 s later: age %v -> %v (want +40), time left %v -> %v (want -40)", age0, age1, left0, left1)
	}

	// Revoked: verified, reported, not stapled.
	if c := dial(t, s.port, "revoked.test", ca.Pool()); len(c.ConnectionState().OCSPResponse) != 0 {
		t.Fatal("a revoked answer was stapled")
	}
	snap = m.Collect(t)
	if got := snap.Int("tlsemit.ocsp.responder.requests", "tlsemit.ocsp.status=revoked"); got != 1 {
		t.Errorf("revoked: %s", snap.Points("tlsemit.ocsp.responder.requests"))
	}
	if got := snap.Int("tlsemit.ocsp.answers", "tlsemit.ocsp.status=none"); got != 1 {
		t.Errorf("unstapled answers: %s", snap.Points("tlsemit.ocsp.answers"))
	}
	if n, _ := snap.Histogram("tlsemit.server.ocsp_request.duration", "tlsemit.ocsp_request.outcome=unstapled"); n != 1 {
		t.Errorf("server's unstapled 'OCSPRequest' waits: %s", snap.Points("tlsemit.server.ocsp_request.duration"))
	}

	// The responder goes down: a certificate not yet fetched gets no
	// staple and the failure is counted by reason; the cached staple is
	// still served.
	r.Stop()
	if c := dial(t, s.port, "down.test", ca.Pool()); len(c.ConnectionState().OCSPResponse) != 0 {
		t.Fatal("stapled with the responder down")
	}
	checkStaple(t, dial(t, s.port, "localhost", ca.Pool()), cas)
	testenv.WaitFor(t, func() bool { return s.srv.Stats().FullHandshakes == 6 })
	snap = m.Collect(t)
	for _, c := range []struct {
		name  string
		attrs []string
		want  int64
	}{
		{"tlsemit.ocsp.fetch.failures", []string{"error.type=unreachable"}, 1},
		{"tlsemit.ocsp.responder.requests", []string{"error.type=unreachable"}, 1},
		{"tlsemit.ocsp.responder.requests", nil, 3},
		{"tlsemit.ocsp.answers", []string{"tlsemit.ocsp.status=good"}, 4},
		{"tlsemit.ocsp.answers", []string{"tlsemit.ocsp.status=none"}, 2},
		{"tlsemit.ocsp.answers", []string{"tlsemit.ocsp.status=revoked"}, 0},
		{"tlsemit.server.handshakes", []string{"tlsemit.handshake.outcome=full", "tls.protocol.version=1.3"}, 6},
	} {
		if got := snap.Int(c.name, c.attrs...); got != c.want {
			t.Errorf("%s %v = %d, want %d\n%s\nevents: %s", c.name, c.attrs, got, c.want, snap.Points(c.name), rec)
		}
	}
	if _, ok := snap.Gauge("tlsemit.ocsp.staple.age", "tlsemit.certificate.name=down.test"); ok {
		t.Error("a gauge for a certificate without an answer")
	}
	if _, ok := snap.Gauge("tlsemit.ocsp.staple.age", "tlsemit.certificate.name=revoked.test"); !ok {
		t.Errorf("no gauge for the revoked answer held: %s", snap.Points("tlsemit.ocsp.staple.age"))
	}
	if n, _ := snap.Histogram("tlsemit.server.handshake.duration"); n != 6 {
		t.Errorf("handshake durations: %s", snap.Points("tlsemit.server.handshake.duration"))
	}
}
