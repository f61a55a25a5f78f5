package crlfetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/telemetry"
)

// The Fetcher's metrics (docs/metrics.md). Checks are counted in the
// Fetcher's own atomics and observed at collection, so a handshake records
// nothing; fetches, in the background, are recorded as they happen; the
// per-CRL gauges are read from the sources at collection.

const (
	keyFetchOutcome = attribute.Key("tlsemit.crl.fetch.outcome")
	keyCheckOutcome = attribute.Key("tlsemit.crl.check.outcome")
	keySource       = attribute.Key("tlsemit.crl.source")
)

// codes are Node's codes a check can end with, in codeIndex's order; the
// last stands for a refusal without one (ErrNotVerified, ErrClosed).
var codes = [...]string{"CERT_REVOKED", "CRL_HAS_EXPIRED", "CRL_NOT_YET_VALID", "UNABLE_TO_GET_CRL", "CRL_SIGNATURE_FAILURE", telemetry.OtherError}

func codeIndex(err error) int {
	c := crl.Code(err)
	for i, name := range codes[:len(codes)-1] {
		if c == name {
			return i
		}
	}
	return len(codes) - 1
}

// counters are the Fetcher's own counts.
type counters struct {
	passed     atomic.Int64
	refused    [len(codes)]atomic.Int64
	failedOpen [len(codes)]atomic.Int64
	panics     atomic.Int64

	mu       sync.Mutex
	byReason map[string]int64 // failures by error.type
}

func (c *counters) recordFailure(err error, _ time.Time) {
	c.mu.Lock()
	if c.byReason == nil {
		c.byReason = map[string]int64{}
	}
	c.byReason[classify(err)]++
	c.mu.Unlock()
}

type metrics struct {
	fetches  metric.Int64Counter
	fetchDur metric.Float64Histogram
	failures metric.Int64ObservableCounter
	checks   metric.Int64ObservableCounter
	age      metric.Float64ObservableGauge
	timeLeft metric.Float64ObservableGauge
	entries  metric.Float64ObservableGauge
	reg      *telemetry.Registration

	byOutcome  map[string]telemetry.AttrSet // new, unchanged, not_modified
	byReason   map[string]telemetry.AttrSet // error.type
	passed     telemetry.AttrSet
	refused    [len(codes)]telemetry.AttrSet
	failedOpen [len(codes)]telemetry.AttrSet

	srcMu sync.Mutex
	bySrc map[string]metric.ObserveOption
}

func newMetrics(p metric.MeterProvider, f *Fetcher) *metrics {
	b := telemetry.NewBuilder(p, "crlfetch")
	m := &metrics{
		fetches: b.Counter("tlsemit.crl.fetches", "{fetch}",
			"CRL fetches from hosts, by outcome: tlsemit.crl.fetch.outcome new (a new CRL in force), unchanged (the CRL held, again) or not_modified (HTTP 304), or the failure in error.type (unreachable, http_status, too_large, malformed, signature, expired, older_crl, …)."),
		fetchDur: b.Duration("tlsemit.crl.fetch.duration",
			"Time of a CRL fetch, from the request to the whole body, by the same outcome as tlsemit.crl.fetches."),
		failures: b.ObservableCounter("tlsemit.crl.failures", "{failure}",
			"Failed CRL updates (from hosts, files and the Store, verification included), by reason in error.type."),
		checks: b.ObservableCounter("tlsemit.crl.checks", "{check}",
			"Chains checked, by tlsemit.crl.check.outcome: passed, refused, or failed_open (passed with FailOpen though revocation was unknown); for the last two, Node's code in error.type (CERT_REVOKED, UNABLE_TO_GET_CRL, CRL_HAS_EXPIRED, …)."),
		age: b.ObservableGauge("tlsemit.crl.age", "s",
			"Age of each CRL held (now less its thisUpdate), by tlsemit.crl.source (its URL or file)."),
		timeLeft: b.ObservableGauge("tlsemit.crl.time_left", "s",
			"Seconds until each CRL held reaches its nextUpdate (negative once past it), by tlsemit.crl.source."),
		entries: b.ObservableGauge("tlsemit.crl.entries", "{entry}",
			"Revoked certificates listed in each CRL held, by tlsemit.crl.source."),
		byOutcome: map[string]telemetry.AttrSet{},
		byReason:  map[string]telemetry.AttrSet{},
		passed:    telemetry.NewAttrSet(keyCheckOutcome.String("passed")),
		bySrc:     map[string]metric.ObserveOption{},
	}
	for _, o := range []string{"new", "unchanged", "not_modified"} {
		m.byOutcome[o] = telemetry.NewAttrSet(keyFetchOutcome.String(o))
	}
	for _, r := range reasons {
		m.byReason[r.Name] = telemetry.NewAttrSet(telemetry.ErrorType.String(r.Name))
	}
	for i, c := range codes {
		m.refused[i] = telemetry.NewAttrSet(keyCheckOutcome.String("refused"), telemetry.ErrorType.String(c))
		m.failedOpen[i] = telemetry.NewAttrSet(keyCheckOutcome.String("failed_open"), telemetry.ErrorType.String(c))
	}
	m.reg = b.Register(f.observe, m.failures, m.checks, m.age, m.timeLeft, m.entries)
	b.Done()
	return m
}

// fetch records one fetch from a host: its outcome, or its failure.
func (m *metrics) fetch(took time.Duration, outcome string, err error) {
	a, ok := m.byOutcome[outcome]
	if err != nil {
		a, ok = m.byReason[classify(err)]
	}
	if !ok {
		return
	}
	ctx := context.Background()
	m.fetches.Add(ctx, 1, a.Add...)
	m.fetchDur.Record(ctx, took.Seconds(), a.Record...)
}

// source returns the attribute set of a source, made once.
func (m *metrics) source(key string) metric.ObserveOption {
	m.srcMu.Lock()
	defer m.srcMu.Unlock()
	a, ok := m.bySrc[key]
	if !ok {
		a = telemetry.Attrs(keySource.String(key))
		m.bySrc[key] = a
	}
	return a
}

// forget drops a forgotten source's attribute set.
func (m *metrics) forget(key string) {
	m.srcMu.Lock()
	delete(m.bySrc, key)
	m.srcMu.Unlock()
}

// observe reports the counters and, per CRL held, its age, time left and
// entries.
func (f *Fetcher) observe(_ context.Context, o metric.Observer) error {
	m, s := f.met, &f.stats
	o.ObserveInt64(m.checks, s.passed.Load(), m.passed.Observe)
	for i := range codes {
		if n := s.refused[i].Load(); n > 0 {
			o.ObserveInt64(m.checks, n, m.refused[i].Observe)
		}
		if n := s.failedOpen[i].Load(); n > 0 {
			o.ObserveInt64(m.checks, n, m.failedOpen[i].Observe)
		}
	}
	s.mu.Lock()
	for reason, n := range s.byReason {
		if a, ok := m.byReason[reason]; ok {
			o.ObserveInt64(m.failures, n, a.Observe)
		}
	}
	s.mu.Unlock()
	now := f.now()
	for _, src := range f.sourceList() {
		h := src.cur.Load()
		if h == nil {
			continue
		}
		a := m.source(src.key)
		o.ObserveFloat64(m.age, now.Sub(h.crl.ThisUpdate).Seconds(), a)
		if !h.crl.NextUpdate.IsZero() {
			o.ObserveFloat64(m.timeLeft, h.crl.NextUpdate.Sub(now).Seconds(), a)
		}
		o.ObserveFloat64(m.entries, float64(h.crl.Len()), a)
	}
	return nil
}
