// Package metrictest installs the OpenTelemetry SDK with a manual reader
// for tests, and reads back what the instruments reported, the way an
// application's exporter would see it.
package metrictest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader is an SDK MeterProvider and its manual reader.
type Reader struct {
	// Provider goes into Options.MeterProvider.
	Provider *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
}

// New returns a Reader shut down when t ends.
func New(t testing.TB) *Reader {
	r := sdkmetric.NewManualReader()
	p := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return &Reader{Provider: p, reader: r}
}

// Collect reads every instrument now.
func (r *Reader) Collect(t testing.TB) *Snapshot {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("metrictest: collect: %v", err)
	}
	s := &Snapshot{t: t, metrics: map[string]metricdata.Metrics{}, scopes: map[string]string{}}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			s.metrics[m.Name] = m
			s.scopes[m.Name] = sm.Scope.Name
		}
	}
	return s
}

// Snapshot is one collection.
type Snapshot struct {
	t       testing.TB
	metrics map[string]metricdata.Metrics
	scopes  map[string]string
}

// Metric returns the named metric, failing the test when it was not
// reported.
func (s *Snapshot) Metric(name string) metricdata.Metrics {
	s.t.Helper()
	m, ok := s.metrics[name]
	if !ok {
		s.t.Fatalf("metric %s not reported; reported: %s", name, strings.Join(s.Names(), ", "))
	}
	return m
}

// Has reports whether the named metric was reported.
func (s *Snapshot) Has(name string) bool { _, ok := s.metrics[name]; return ok }

// Scope returns the instrumentation scope (meter) that reported name.
func (s *Snapshot) Scope(name string) string { return s.scopes[name] }

// Names lists the metrics reported, sorted.
func (s *Snapshot) Names() []string {
	var names []string
	for n := range s.metrics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// match reports whether set has every attribute of want ("key=value").
func match(set attribute.Set, want []string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

// Int returns the sum of the int64 counter or up-down counter name over
// the points whose attributes include attrs ("key=value"); 0 when none
// does.
func (s *Snapshot) Int(name string, attrs ...string) int64 {
	s.t.Helper()
	sum, ok := s.Metric(name).Data.(metricdata.Sum[int64])
	if !ok {
		s.t.Fatalf("metric %s is %T, not an int64 sum", name, s.Metric(name).Data)
	}
	var n int64
	for _, p := range sum.DataPoints {
		if match(p.Attributes, attrs) {
			n += p.Value
		}
	}
	return n
}

// Gauge returns the value of the float64 gauge name at the point whose
// attributes include attrs, and whether there is one.
func (s *Snapshot) Gauge(name string, attrs ...string) (float64, bool) {
	s.t.Helper()
	if !s.Has(name) {
		return 0, false
	}
	g, ok := s.Metric(name).Data.(metricdata.Gauge[float64])
	if !ok {
		s.t.Fatalf("metric %s is %T, not a float64 gauge", name, s.Metric(name).Data)
	}
	for _, p := range g.DataPoints {
		if match(p.Attributes, attrs) {
			return p.Value, true
		}
	}
	return 0, false
}

// Histogram returns the count and sum of the float64 histogram name over
// the points whose attributes include attrs.
func (s *Snapshot) Histogram(name string, attrs ...string) (count uint64, sum float64) {
	s.t.Helper()
	h, ok := s.Metric(name).Data.(metricdata.Histogram[float64])
	if !ok {
		s.t.Fatalf("metric %s is %T, not a float64 histogram", name, s.Metric(name).Data)
	}
	for _, p := range h.DataPoints {
		if match(p.Attributes, attrs) {
			count += p.Count
			sum += p.Sum
		}
	}
	return count, sum
}

// Points describes every point of name ("{attrs} value"), for failure
// messages.
func (s *Snapshot) Points(name string) string {
	if !s.Has(name) {
		return name + ": not reported"
	}
	var b strings.Builder
	switch d := s.metrics[name].Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			fmt.Fprintf(&b, "{%s} %d; ", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Value)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			fmt.Fprintf(&b, "{%s} %g; ", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Value)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			fmt.Fprintf(&b, "{%s} count %d sum %g; ", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count, p.Sum)
		}
	}
	return name + ": " + b.String()
}
