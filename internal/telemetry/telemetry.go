// Package telemetry is the metric plumbing tlsserver, ocspfetch, crlfetch
// and fleet share, so that their instruments follow one set of conventions
// (docs/metrics.md): the OpenTelemetry metrics API only, one meter per
// package named after its import path, instrument names under "tlsemit.",
// UCUM units, durations in seconds with the same bucket boundaries, and
// attribute sets built once so that recording allocates nothing.
//
// A package builds its instruments with a Builder when it is made, and
// unregisters its callbacks when it is closed:
//
//	b := telemetry.NewBuilder(opts.MeterProvider, "ocspfetch")
//	m.requests = b.Counter("tlsemit.ocsp.responder.requests", "{request}", "…")
//	m.reg = b.Register(m.observe, m.answers) // m.reg.Unregister() on Close
//	b.Done() // instrument errors go to otel.Handle
package telemetry

import (
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopePrefix is the module's import path: a package's meter is named
// ScopePrefix + the package's name ("github.com/tlsemit/tlsemit/tlsserver").
const ScopePrefix = "github.com/tlsemit/tlsemit/"

// Attribute keys shared by the packages. Keys OpenTelemetry's semantic
// conventions define are used as they define them; the others are under
// "tlsemit.".
const (
	// TLSVersion is the semantic conventions' tls.protocol.version: "1.2",
	// "1.3". Left out when the version is not known (a failed handshake
	// before the ClientHello).
	TLSVersion = attribute.Key("tls.protocol.version")
	// ErrorType is the semantic conventions' error.type: present only on
	// failures, with a low-cardinality reason (a Node code such as
	// "ECONNRESET", a sentinel's name such as "unreachable"), OtherError
	// when there is none.
	ErrorType = attribute.Key("error.type")
)

// OtherError is error.type's value for an error without a known reason,
// as the semantic conventions spell it.
const OtherError = "_OTHER"

// DurationBuckets are the explicit histogram boundaries, in seconds, of
// every duration instrument: from half a millisecond (a handshake on
// loopback, a staple from memory) to two minutes (Node's handshake
// timeout).
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Meter returns the meter of the package named pkg from p, or from the
// global provider (a no-op until the application installs one) when p
// is nil.
func Meter(p metric.MeterProvider, pkg string) metric.Meter {
	if p == nil {
		p = otel.GetMeterProvider()
	}
	return p.Meter(ScopePrefix + pkg)
}

// Attrs returns kv as a measurement option, for Add, Record and Observe
// alike. Build it once, when the instruments are made: passing it (in a
// slice made once, for Add and Record) allocates nothing.
func Attrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}

// AttrSet is one attribute set in the shapes Add, Record and Observe
// take, built once when the instruments are made.
type AttrSet struct {
	Add     []metric.AddOption
	Record  []metric.RecordOption
	Observe metric.ObserveOption
}

// NewAttrSet returns kv as an AttrSet.
func NewAttrSet(kv ...attribute.KeyValue) AttrSet {
	a := Attrs(kv...)
	return AttrSet{Add: []metric.AddOption{a}, Record: []metric.RecordOption{a}, Observe: a}
}

// Builder makes a package's instruments on its meter, each with a unit
// and a description, and collects the errors a provider may return (the
// instrument it returns alongside is still usable, as the API requires).
type Builder struct {
	m    metric.Meter
	errs []error
}

// NewBuilder returns a Builder on Meter(p, pkg).
func NewBuilder(p metric.MeterProvider, pkg string) *Builder {
	return &Builder{m: Meter(p, pkg)}
}

func (b *Builder) check(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

// Counter is a monotonic count recorded as it happens.
func (b *Builder) Counter(name, unit, desc string) metric.Int64Counter {
	v, err := b.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.check(err)
	return v
}

// ObservableCounter is a monotonic count read from the package's own
// counters when metrics are collected: nothing is recorded as it happens.
func (b *Builder) ObservableCounter(name, unit, desc string) metric.Int64ObservableCounter {
	v, err := b.m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.check(err)
	return v
}

// ObservableUpDownCounter is a count that goes up and down (open
// connections), read when metrics are collected.
func (b *Builder) ObservableUpDownCounter(name, unit, desc string) metric.Int64ObservableUpDownCounter {
	v, err := b.m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.check(err)
	return v
}

// ObservableGauge is a value read when metrics are collected (a staple's
// age), in unit.
func (b *Builder) ObservableGauge(name, unit, desc string) metric.Float64ObservableGauge {
	v, err := b.m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.check(err)
	return v
}

// Duration is a histogram of durations in seconds (unit "s") with
// DurationBuckets.
func (b *Builder) Duration(name, desc string) metric.Float64Histogram {
	v, err := b.m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(DurationBuckets...))
	b.check(err)
	return v
}

// Register registers cb to observe insts at each collection. Unregister
// it when the package's object is closed, so that a closed server or
// Fetcher is no longer observed (nor kept alive).
func (b *Builder) Register(cb metric.Callback, insts ...metric.Observable) *Registration {
	v, err := b.m.RegisterCallback(cb, insts...)
	b.check(err)
	return &Registration{reg: v}
}

// Done reports the errors met, if any, to OpenTelemetry's error handler
// (otel.Handle), where the application sees its provider's other errors.
// Metrics never fail a server or a Fetcher.
func (b *Builder) Done() {
	if err := errors.Join(b.errs...); err != nil {
		otel.Handle(err)
	}
}

// Registration is a callback Register registered.
type Registration struct {
	reg  metric.Registration // nil when the provider failed to register it
	once sync.Once
}

// Unregister ends the callback's observation; calls after the first do
// nothing.
func (r *Registration) Unregister() {
	r.once.Do(func() {
		if r.reg != nil {
			r.reg.Unregister()
		}
	})
}
