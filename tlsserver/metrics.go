package tlsserver

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/internal/telemetry"
)

// The server's metrics (docs/metrics.md). Counts are the server's own
// counters (stats.go), read when metrics are collected; only durations
// are recorded as they happen, and only when the provider wants them
// (Enabled), each with an attribute set built in New: with no provider
// installed a handshake pays two atomic loads.

// Attribute keys of the server's instruments, besides telemetry's.
const (
	keyHandshakeOutcome = attribute.Key("tlsemit.handshake.outcome") // full, resumed, failed
	keyOCSPOutcome      = attribute.Key("tlsemit.ocsp_request.outcome")
	keyDropReason       = attribute.Key("tlsemit.drop.reason")
)

var outcomeNames = [hsOutcomes]string{hsFull: "full", hsResumed: "resumed", hsFailed: "failed"}

// The outcomes of an 'OCSPRequest' wait, for its duration's attribute.
const (
	ocspStapled   = iota // the callback gave a staple
	ocspUnstapled        // it gave nothing
	ocspFailed           // it gave an error, or the connection ended first
	ocspOutcomes
)

var ocspOutcomeNames = [ocspOutcomes]string{ocspStapled: "stapled", ocspUnstapled: "unstapled", ocspFailed: "failed"}

var dropReasons = [2]string{dropOverMax: "max_connections", dropNotAccepted: "not_accepted"}

type metrics struct {
	handshakeDur metric.Float64Histogram
	ocspDur      metric.Float64Histogram

	handshakes   metric.Int64ObservableCounter
	active       metric.Int64ObservableUpDownCounter
	drops        metric.Int64ObservableCounter
	clientErrors metric.Int64ObservableCounter
	reg          *telemetry.Registration

	// Attribute sets, built once.
	hsRecord   [hsOutcomes][len(versionNames)][]metric.RecordOption
	hsObserve  [hsOutcomes][len(versionNames)]metric.ObserveOption
	ocspRecord [ocspOutcomes][]metric.RecordOption
	dropAttrs  [2]metric.ObserveOption
	codeAttrs  map[string]metric.ObserveOption // by Node code, as met; under counters.mu
}

// newMetrics makes the server's instruments on p (nil: the global
// provider) and registers s to be observed.
func newMetrics(p metric.MeterProvider, s *Server) *metrics {
	b := telemetry.NewBuilder(p, "tlsserver")
	m := &metrics{
		handshakes: b.ObservableCounter("tlsemit.server.handshakes", "{handshake}",
			"TLS handshakes that ended, by outcome (full, resumed, failed) and TLS version."),
		handshakeDur: b.Duration("tlsemit.server.handshake.duration",
			"Time from accepting a connection to the end of its handshake, as the server sees it: including the time it waited for 'OCSPRequest', 'newSession' and 'resumeSession' callbacks."),
		ocspDur: b.Duration("tlsemit.server.ocsp_request.duration",
			"Time from emitting 'OCSPRequest' to its callback's answer (or the connection's end), by outcome (stapled, unstapled, failed)."),
		active: b.ObservableUpDownCounter("tlsemit.server.active_connections", "{connection}",
			"Open connections: handshaking, established, and waiting for Listener's Accept."),
		drops: b.ObservableCounter("tlsemit.server.dropped_connections", "{connection}",
			"Connections dropped and reported through 'drop', by reason (max_connections, not_accepted)."),
		clientErrors: b.ObservableCounter("tlsemit.server.client_errors", "{error}",
			"'tlsClientError' reports, by Node error code in error.type (ECONNRESET, ERR_TLS_HANDSHAKE_TIMEOUT, …; _OTHER without one)."),
		codeAttrs: make(map[string]metric.ObserveOption),
	}
	for o := range hsOutcomes {
		for v, name := range versionNames {
			kv := []attribute.KeyValue{keyHandshakeOutcome.String(outcomeNames[o])}
			if name != "" {
				kv = append(kv, telemetry.TLSVersion.String(name))
			}
			a := telemetry.Attrs(kv...)
			m.hsRecord[o][v] = []metric.RecordOption{a}
			m.hsObserve[o][v] = a
		}
	}
	for o, name := range ocspOutcomeNames {
		m.ocspRecord[o] = []metric.RecordOption{telemetry.Attrs(keyOCSPOutcome.String(name))}
	}
	for r, name := range dropReasons {
		m.dropAttrs[r] = telemetry.Attrs(keyDropReason.String(name))
	}
	m.reg = b.Register(s.observe, m.handshakes, m.active, m.drops, m.clientErrors)
	b.Done()
	return m
}

// timed reports whether handshake durations are recorded: a handshake
// reads the clock only then.
func (m *metrics) timed() bool { return m.handshakeDur.Enabled(context.Background()) }

func (m *metrics) handshakeDuration(d time.Duration, outcome, version int) {
	m.handshakeDur.Record(context.Background(), d.Seconds(), m.hsRecord[outcome][version]...)
}

// ocspStart returns the time an 'OCSPRequest' wait starts, zero when its
// duration is not recorded.
func (m *metrics) ocspStart() time.Time {
	if m.ocspDur.Enabled(context.Background()) {
		return time.Now()
	}
	return time.Time{}
}

func (m *metrics) ocspEnded(start time.Time, outcome int) {
	if !start.IsZero() {
		m.ocspDur.Record(context.Background(), time.Since(start).Seconds(), m.ocspRecord[outcome]...)
	}
}

// observe reports the server's counters.
func (s *Server) observe(_ context.Context, o metric.Observer) error {
	m, k := s.met, &s.counts
	for out := range hsOutcomes {
		for v := range versionNames {
			if n := k.handshakes[out][v].Load(); n > 0 {
				o.ObserveInt64(m.handshakes, n, m.hsObserve[out][v])
			}
		}
	}
	o.ObserveInt64(m.active, int64(s.Connections()))
	for r := range k.drops {
		o.ObserveInt64(m.drops, k.drops[r].Load(), m.dropAttrs[r])
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for code, n := range k.byCode {
		a, ok := m.codeAttrs[code]
		if !ok {
			v := code
			if v == "" {
				v = telemetry.OtherError
			}
			a = telemetry.Attrs(telemetry.ErrorType.String(v))
			m.codeAttrs[code] = a
		}
		o.ObserveInt64(m.clientErrors, n, a)
	}
	return nil
}
