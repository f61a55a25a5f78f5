package ocspfetch

import (
	"errors"
	"math"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestMetricsResponderOutage: a Good staple is cached; the real responder
// goes down; the refresh fails. The failure is counted by reason, the
// staple is still served and its gauges go on (age growing, time left
// shrinking), and Certificates says what a status page shows: still
// stapled, the outage as the last error, a retry planned.
func TestMetricsResponderOutage(t *testing.T) {
	p := startReal(t, false, 5)
	leaf := p.leaf(t, true)
	m := metrictest.New(t)
	clk := newClock()
	f, _ := newFetcher(t, Options{HTTPClient: p.r.Client, Now: clk.Now, MeterProvider: m.Provider})
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); res.der == nil {
		t.Fatalf("cold: %v", res.err)
	}
	attrs := []string{"tlsemit.certificate.name=localhost", "tlsemit.certificate.serial=" + leaf.Serial()}
	s := m.Collect(t)
	age0, _ := s.Gauge("tlsemit.ocsp.staple.age", attrs...)
	left0, ok := s.Gauge("tlsemit.ocsp.staple.time_left", attrs...)
	if !ok {
		t.Fatalf("no gauge: %s", s.Points("tlsemit.ocsp.staple.time_left"))
	}

	p.r.Stop()
	clk.Advance(3 * time.Minute) // -nmin 5: the refresh is due at 2.5 min ± 15 s
	if n := refreshNow(t, f, clk.Now()); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); res.der == nil {
		t.Fatal("the cached staple was dropped at the first failed refresh")
	}
	s = m.Collect(t)
	if got := s.Int("tlsemit.ocsp.fetch.failures", "error.type=unreachable"); got != 1 {
		t.Errorf("failures: %s", s.Points("tlsemit.ocsp.fetch.failures"))
	}
	if got := s.Int("tlsemit.ocsp.responder.requests", "error.type=unreachable"); got != 1 {
		t.Errorf("requests: %s", s.Points("tlsemit.ocsp.responder.requests"))
	}
	if got := s.Int("tlsemit.ocsp.answers", "tlsemit.ocsp.status=good"); got != 2 {
		t.Errorf("answers: %s", s.Points("tlsemit.ocsp.answers"))
	}
	age1, _ := s.Gauge("tlsemit.ocsp.staple.age", attrs...)
	left1, _ := s.Gauge("tlsemit.ocsp.staple.time_left", attrs...)
	if math.Abs(age1-age0-180) > 1e-6 || math.Abs(left0-left1-180) > 1e-6 {
		t.Errorf("3 min later: age %v -> %v, time left %v -> %v", age0, age1, left0, left1)
	}

	cs := f.Certificates()
	if len(cs) != 1 {
		t.Fatalf("%d certificates", len(cs))
	}
	c := cs[0]
	switch {
	case !c.Stapled || c.Staple == nil || c.Staple.Status != ocsp.Good:
		t.Errorf("not shown as stapled Good: %+v", c)
	case !errors.Is(c.LastError, ErrUnreachable) || c.Failures != 1:
		t.Errorf("the outage is not the last error: %v (%d failures)", c.LastError, c.Failures)
	case !c.NextRefresh.After(clk.Now()) || c.NextRefresh.After(clk.Now().Add(DefaultMinRetryDelay)):
		t.Errorf("next refresh %v, want a retry within %v of %v", c.NextRefresh, DefaultMinRetryDelay, clk.Now())
	case c.ResponderURL != p.r.URL || c.Serial != leaf.Serial() || len(c.Names) == 0 || c.Names[0] != "localhost":
		t.Errorf("identity: %+v", c)
	}
}

// TestCertificatesStatuses: Certificates for a Good, a Revoked, an
// Unknown certificate and one without a responder, against the real
// responder, sorted by name.
func TestCertificatesStatuses(t *testing.T) {
	p := startReal(t, true, 5)
	issue := func(name string, listed, must bool) []byte {
		l := p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{name}, OCSPServer: []string{p.r.URL}, MustStaple: must})
		if listed {
			p.r.Add(l)
		}
		if name == "b-revoked" {
			p.r.Revoke(l)
		}
		return l.DER
	}
	good, revoked, unknown := issue("a-good", true, true), issue("b-revoked", true, false), issue("c-unknown", false, false)
	none := p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"d-none"}}).DER
	m := metrictest.New(t)
	f, _ := newFetcher(t, Options{HTTPClient: p.r.Client, StapleRevoked: true, MeterProvider: m.Provider})
	for _, der := range [][]byte{none, unknown, revoked, good, revoked, good} {
		request(t, f, der, p.ca.DER)
	}
	// Each answer counted once, by what was stapled; the second ones from
	// memory.
	s := m.Collect(t)
	for status, want := range map[string]int64{"good": 2, "revoked": 2, "none": 2} {
		if got := s.Int("tlsemit.ocsp.answers", "tlsemit.ocsp.status="+status); got != want {
			t.Errorf("answers %s: %d, want %d\n%s", status, got, want, s.Points("tlsemit.ocsp.answers"))
		}
	}
	if st := f.Stats(); st.Hits != 2 || st.Misses != 3 || st.Unstapled != 1 {
		t.Errorf("Stats: hits %d misses %d unstapled %d", st.Hits, st.Misses, st.Unstapled)
	}
	cs := f.Certificates()
	if len(cs) != 4 {
		t.Fatalf("%d certificates", len(cs))
	}
	want := []struct {
		name    string
		status  int // -1: no staple
		stapled bool
		err     error
	}{
		{"a-good", ocsp.Good, true, nil},
		{"b-revoked", ocsp.Revoked, true, ErrRevoked},
		{"c-unknown", ocsp.Unknown, false, ErrUnknownStatus},
		{"d-none", -1, false, ErrNoResponder},
	}
	for i, w := range want {
		c := cs[i]
		status := -1
		if c.Staple != nil {
			status = c.Staple.Status
		}
		if c.Names[0] != w.name || status != w.status || c.Stapled != w.stapled || !errors.Is(c.LastError, w.err) || (w.err == nil) != (c.LastError == nil) {
			t.Errorf("%d: %+v, want %+v", i, c, w)
		}
	}
	if !cs[0].MustStaple || cs[1].MustStaple || cs[0].NextRefresh.IsZero() || !cs[3].NextRefresh.IsZero() || cs[3].ResponderURL != "" {
		t.Errorf("Must-Staple, next refresh, responder: %+v / %+v", cs[0], cs[3])
	}
}
