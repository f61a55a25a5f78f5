package ocspfetch

import (
	"context"
	"crypto/x509"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/telemetry"
)

// The Fetcher's metrics (docs/metrics.md). What handshakes do is read from
// the Fetcher's own counters when metrics are collected, so the cache-hit
// path records nothing; responder requests, in the background, are
// recorded as they happen; the per-certificate gauges are read from the
// cache at collection.

// Attribute keys of the Fetcher's instruments, besides telemetry's.
const (
	// keyStatus is an OCSP status: good, revoked, unknown, and, for a
	// handshake's answer, none (nothing stapled).
	keyStatus      = attribute.Key("tlsemit.ocsp.status")
	keyCertName    = attribute.Key("tlsemit.certificate.name")
	keyCertSerial  = attribute.Key("tlsemit.certificate.serial")
	statusGood     = "good"
	statusRevoked  = "revoked"
	statusUnknown  = "unknown"
	statusNoStaple = "none"
)

type metrics struct {
	requests    metric.Int64Counter
	requestDur  metric.Float64Histogram
	answers     metric.Int64ObservableCounter
	failures    metric.Int64ObservableCounter
	stapleAge   metric.Float64ObservableGauge
	stapleLeft  metric.Float64ObservableGauge
	reg         *telemetry.Registration
	byStatus    map[int]telemetry.AttrSet   // ocsp.Good, ocsp.Revoked, ocsp.Unknown
	byReason    map[error]telemetry.AttrSet // the sentinels
	answerAttrs [3]telemetry.AttrSet        // good, revoked, none
}

func newMetrics(p metric.MeterProvider, f *Fetcher) *metrics {
	b := telemetry.NewBuilder(p, "ocspfetch")
	m := &metrics{
		requests: b.Counter("tlsemit.ocsp.responder.requests", "{request}",
			"OCSP requests sent to responders, by outcome: the verified answer's status in tlsemit.ocsp.status (good, revoked, unknown), or the failure in error.type (unreachable, http_status, malformed, …)."),
		requestDur: b.Duration("tlsemit.ocsp.responder.request.duration",
			"Time of an OCSP request to a responder, from sending it to its whole answer, by the same outcome as tlsemit.ocsp.responder.requests."),
		answers: b.ObservableCounter("tlsemit.ocsp.answers", "{answer}",
			"'OCSPRequest' answers, by what was stapled: tlsemit.ocsp.status good or revoked (a staple of that status), or none (no staple)."),
		failures: b.ObservableCounter("tlsemit.ocsp.fetch.failures", "{failure}",
			"Failed fetches (first fetches and refreshes), by reason in error.type."),
		stapleAge: b.ObservableGauge("tlsemit.ocsp.staple.age", "s",
			"Age of each certificate's staple (now less its ThisUpdate), for certificates with a verified answer held."),
		stapleLeft: b.ObservableGauge("tlsemit.ocsp.staple.time_left", "s",
			"Seconds until each certificate's staple reaches its NextUpdate, for certificates with a verified answer held."),
		byStatus: map[int]telemetry.AttrSet{
			ocsp.Good:    telemetry.NewAttrSet(keyStatus.String(statusGood)),
			ocsp.Revoked: telemetry.NewAttrSet(keyStatus.String(statusRevoked)),
			ocsp.Unknown: telemetry.NewAttrSet(keyStatus.String(statusUnknown)),
		},
		byReason: make(map[error]telemetry.AttrSet, len(reasons)),
	}
	for _, r := range reasons {
		m.byReason[r.Err] = telemetry.NewAttrSet(telemetry.ErrorType.String(r.Name))
	}
	for i, s := range []string{statusGood, statusRevoked, statusNoStaple} {
		m.answerAttrs[i] = telemetry.NewAttrSet(keyStatus.String(s))
	}
	m.reg = b.Register(f.observe, m.answers, m.failures, m.stapleAge, m.stapleLeft)
	b.Done()
	return m
}

// request records one request to a responder: its time, and its verified
// status or, with err, its failure.
func (m *metrics) request(took time.Duration, status int, err error) {
	a, ok := m.byStatus[status]
	if err != nil {
		a, ok = m.byReason[classify(err)]
	}
	if !ok {
		a = m.byStatus[ocsp.Unknown]
	}
	ctx := context.Background()
	m.requests.Add(ctx, 1, a.Add...)
	m.requestDur.Record(ctx, took.Seconds(), a.Record...)
}

// observe reports the Fetcher's counters and, for each certificate with
// a verified answer, its staple's age and time left.
func (f *Fetcher) observe(_ context.Context, o metric.Observer) error {
	m, s := f.met, &f.stats
	// Each handshake's answer is counted in exactly one of these.
	good := s.hits.Load() + s.missGood.Load()
	revoked := s.revokedHits.Load() + s.missRevoked.Load()
	none := s.unstapled.Load() + s.missNone.Load()
	for i, n := range []int64{good, revoked, none} {
		o.ObserveInt64(m.answers, n, m.answerAttrs[i].Observe)
	}
	s.mu.Lock()
	for reason, n := range s.byReason {
		o.ObserveInt64(m.failures, n, m.byReason[reason].Observe)
	}
	s.mu.Unlock()
	now := f.now()
	for _, e := range f.certs.all() {
		st := e.cur.Load()
		if st == nil || st.staple == nil || e.attrs == nil || now.UnixNano() >= st.until {
			continue
		}
		o.ObserveFloat64(m.stapleAge, now.Sub(st.staple.ThisUpdate).Seconds(), e.attrs)
		o.ObserveFloat64(m.stapleLeft, st.staple.NextUpdate.Sub(now).Seconds(), e.attrs)
	}
	return nil
}

// certAttrs names a certificate for its gauges: a short name and its
// serial.
func certAttrs(cert *x509.Certificate, serial string) metric.ObserveOption {
	return telemetry.Attrs(keyCertName.String(shortName(cert)), keyCertSerial.String(serial))
}

// shortName is a certificate's first DNS name, else its common name,
// else its first IP address.
func shortName(cert *x509.Certificate) string {
	if names := certNames(cert); len(names) > 0 {
		return names[0]
	}
	return ""
}

// certNames are the names a certificate is for: its DNS names, else its
// common name; then its IP addresses.
func certNames(cert *x509.Certificate) []string {
	names := append([]string(nil), cert.DNSNames...)
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = append(names, cert.Subject.CommonName)
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
