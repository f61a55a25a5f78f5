package crlfetch

import (
	"math"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestMetrics: fetches by outcome and failure, checks by outcome and Node
// code, each CRL's age, time left and entries, read back through the
// OpenTelemetry SDK; and the read API (CRLs) a status page shows.
func TestMetrics(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	now := clk.Now().Truncate(time.Second)
	m.publish(t, testpki.CRLOptions{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)})
	r := metrictest.New(t)
	f, rec := newFetcher(t, Options{Now: clk.Now, MeterProvider: r.Provider})
	m.check(f, m.good)
	m.check(f, m.bad)
	m.check(f, m.bad)

	src := m.host.URL + "/inter.crl"
	s := r.Collect(t)
	if got := s.Int("tlsemit.crl.fetches", "tlsemit.crl.fetch.outcome=new"); got != 2 {
		t.Errorf("fetches: %s", s.Points("tlsemit.crl.fetches"))
	}
	if n, _ := s.Histogram("tlsemit.crl.fetch.duration", "tlsemit.crl.fetch.outcome=new"); n != 2 {
		t.Errorf("fetch duration: %s", s.Points("tlsemit.crl.fetch.duration"))
	}
	if s.Int("tlsemit.crl.checks", "tlsemit.crl.check.outcome=passed") != 1 ||
		s.Int("tlsemit.crl.checks", "tlsemit.crl.check.outcome=refused", "error.type=CERT_REVOKED") != 2 {
		t.Errorf("checks: %s", s.Points("tlsemit.crl.checks"))
	}
	age, _ := s.Gauge("tlsemit.crl.age", "tlsemit.crl.source="+src)
	left, _ := s.Gauge("tlsemit.crl.time_left", "tlsemit.crl.source="+src)
	entries, ok := s.Gauge("tlsemit.crl.entries", "tlsemit.crl.source="+src)
	wantAge := clk.Now().Sub(now.Add(-time.Minute)).Seconds()
	if !ok || math.Abs(age-wantAge) > 1e-6 || math.Abs(left-(3660-wantAge)) > 1e-6 || entries != 1 {
		t.Errorf("gauges: age %v, time left %v, entries %v: %s", age, left, entries, s.Points("tlsemit.crl.age"))
	}
	if s.Scope("tlsemit.crl.checks") != "github.com/tlsemit/tlsemit/crlfetch" {
		t.Errorf("scope %q", s.Scope("tlsemit.crl.checks"))
	}

	// The host goes down; the refresh fails; the CRL is still held.
	m.host.Handle("/inter.crl", down)
	clk.Advance(40 * time.Minute)
	f.pokeAll()
	rec.wait(t, EventFailed, 1)
	s = r.Collect(t)
	if s.Int("tlsemit.crl.fetches", "error.type=http_status") < 1 || s.Int("tlsemit.crl.failures", "error.type=http_status") < 1 {
		t.Errorf("failures: %s %s", s.Points("tlsemit.crl.fetches"), s.Points("tlsemit.crl.failures"))
	}
	if left, _ := s.Gauge("tlsemit.crl.time_left", "tlsemit.crl.source="+src); math.Abs(left-now.Add(time.Hour).Sub(clk.Now()).Seconds()) > 1e-6 || left > 1200 {
		t.Errorf("time left 40 min later: %v", left)
	}
	st := status(t, f, src)
	if !st.Held || st.Entries != 1 || st.Size == 0 || st.Number == nil || st.Issuer != m.inter.Cert.Subject.String() ||
		st.LastError == nil || st.Failures != 1 || !st.NextFetch.After(clk.Now()) || !st.NextFetch.Before(now.Add(time.Hour)) ||
		st.Origin != "network" || st.Expired {
		t.Errorf("status: %+v", st)
	}

	// Closed: no longer observed.
	f.Close()
	if s = r.Collect(t); s.Has("tlsemit.crl.age") {
		t.Errorf("a closed Fetcher is still observed: %s", s.Points("tlsemit.crl.age"))
	}
}
