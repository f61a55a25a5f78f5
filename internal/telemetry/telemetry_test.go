package telemetry_test

import (
	"context"
	"slices"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tlsemit/tlsemit/internal/telemetry"
)

// TestBuilder: the meter is named after the package, durations are in
// seconds with the shared buckets, attribute sets reach the reader, and a
// provider's error goes to otel.Handle instead of failing.
func TestBuilder(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	var handled []error
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { handled = append(handled, err) }))
	defer otel.SetErrorHandler(prev)

	b := telemetry.NewBuilder(mp, "pkg")
	d := b.Duration("tlsemit.test.duration", "a duration")
	bad := b.Counter("not a valid name!", "{x}", "an invalid instrument name")
	b.Done()
	if len(handled) != 1 {
		t.Fatalf("errors handled: %v", handled)
	}
	bad.Add(context.Background(), 1) // still usable
	opts := []metric.RecordOption{telemetry.Attrs(telemetry.TLSVersion.String("1.3"))}
	d.Record(context.Background(), 0.002, opts...)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sm := rm.ScopeMetrics[0]
	if sm.Scope.Name != telemetry.ScopePrefix+"pkg" {
		t.Errorf("scope %q", sm.Scope.Name)
	}
	i := slices.IndexFunc(sm.Metrics, func(m metricdata.Metrics) bool { return m.Name == "tlsemit.test.duration" })
	if i < 0 {
		t.Fatalf("metrics: %+v", sm.Metrics)
	}
	m := sm.Metrics[i]
	h := m.Data.(metricdata.Histogram[float64])
	p := h.DataPoints[0]
	if m.Unit != "s" || !slices.Equal(p.Bounds, telemetry.DurationBuckets) || p.Count != 1 {
		t.Errorf("unit %q bounds %v count %d", m.Unit, p.Bounds, p.Count)
	}
	if v, ok := p.Attributes.Value(telemetry.TLSVersion); !ok || v.AsString() != "1.3" {
		t.Errorf("attributes %v", p.Attributes)
	}
}
