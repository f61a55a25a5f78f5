package fleet

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/internal/telemetry"
)

// Attribute keys of the fleet's instruments (docs/metrics.md).
const (
	attrFeature = attribute.Key("tlsemit.fleet.feature") // staples, sessions, ticket_keys
	attrOp      = attribute.Key("db.operation.name")     // the Redis command
)

// metrics are the fleet's instruments. Everything they record happens off
// the handshake's hot path (a Redis call is already a round trip), so it is
// recorded as it happens.
type metrics struct {
	ops       metric.Float64Histogram
	errs      metric.Int64Counter
	rotations metric.Int64Counter
	adopted   metric.Int64Counter

	sets sync.Map // "feature|op|error" → *telemetry.AttrSet, each built once
	none []metric.AddOption
}

func newMetrics(p metric.MeterProvider) *metrics {
	b := telemetry.NewBuilder(p, "fleet")
	m := &metrics{
		ops: b.Duration("tlsemit.fleet.redis.operation.duration",
			"Time of a Redis operation made by the fleet, by feature and command; error.type on failures."),
		errs: b.Counter("tlsemit.fleet.redis.errors", "{error}",
			"Redis operations made by the fleet that failed or timed out, by feature and reason (timeout, _OTHER); a caller's cancellation is not one."),
		rotations: b.Counter("tlsemit.fleet.ticket_key.rotations", "{rotation}",
			"Changes of the ticket key this member encrypts with."),
		adopted: b.Counter("tlsemit.fleet.staples.adopted", "{staple}",
			"OCSP responses another member fetched, read from Redis by this member for the first time (ocspfetch verifies each before serving it)."),
	}
	b.Done()
	m.none = []metric.AddOption{}
	return m
}

// attrs returns the attribute options of one operation's outcome.
func (m *metrics) attrs(feature, op, errType string) *telemetry.AttrSet {
	key := feature + "|" + op + "|" + errType
	if a, ok := m.sets.Load(key); ok {
		return a.(*telemetry.AttrSet)
	}
	kv := []attribute.KeyValue{attrFeature.String(feature), attrOp.String(op)}
	if errType != "" {
		kv = append(kv, telemetry.ErrorType.String(errType))
	}
	set := telemetry.NewAttrSet(kv...)
	a, _ := m.sets.LoadOrStore(key, &set)
	return a.(*telemetry.AttrSet)
}

// operation records one Redis operation of feature that took d and ended
// with err, of the given kind: only outages count as errors.
func (m *metrics) operation(feature, op string, d time.Duration, err error, kind outcomeKind) {
	errType := ""
	switch kind {
	case outcomeOutage:
		errType = errorType(err)
	case outcomeCaller:
		errType = "canceled"
	case outcomeWrongType:
		errType = "wrong_type"
	}
	a := m.attrs(feature, op, errType)
	ctx := context.Background()
	if m.ops.Enabled(ctx) {
		m.ops.Record(ctx, d.Seconds(), a.Record...)
	}
	if kind == outcomeOutage {
		m.errs.Add(ctx, 1, a.Add...)
	}
}

func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errOpTimeout), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return telemetry.OtherError
}
