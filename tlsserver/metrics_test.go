package tlsserver_test

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/tlsemit/tlsemit/internal/metrictest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

const (
	mHandshakes   = "tlsemit.server.handshakes"
	mHandshakeDur = "tlsemit.server.handshake.duration"
	mOCSPDur      = "tlsemit.server.ocsp_request.duration"
	mActive       = "tlsemit.server.active_connections"
	mDropped      = "tlsemit.server.dropped_connections"
	mClientErrors = "tlsemit.server.client_errors"
)

// TestMetrics drives handshakes of every outcome through a server with
// the OpenTelemetry SDK installed, and reads back what an exporter would
// see: counts by outcome and version, durations including the
// 'OCSPRequest' wait, open and dropped connections, client errors by
// Node code, and the same counts from Stats.
func TestMetrics(t *testing.T) {
	p := newTSPKI(t)
	m := metrictest.New(t)
	staple := p.ca.OCSPResponse(t, p.leaf.Cert, testpki.ResponseOptions{})
	refuse := make(chan bool, 1)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.MeterProvider = m.Provider })
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		select {
		case <-refuse:
			cb(syscall.ECONNREFUSED, nil)
		default:
			time.Sleep(20 * time.Millisecond) // a listener that takes its time: part of the handshake's duration
			cb(nil, staple)
		}
	})

	s := m.Collect(t)
	if n := s.Int(mActive); n != 0 {
		t.Fatalf("active connections before any: %d", n)
	}
	if s.Has(mHandshakes) && s.Int(mHandshakes) != 0 {
		t.Fatalf("handshakes before any: %s", s.Points(mHandshakes))
	}

	// Two full TLS 1.3 handshakes, one full and one resumed TLS 1.2 one.
	for range 2 {
		tsMustDial(t, srv, tsClientConfig(p, tls.VersionTLS13)).Close()
	}
	cfg12 := tsClientConfig(p, tls.VersionTLS12)
	cfg12.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	tsMustDial(t, srv, cfg12).Close()
	if c := tsMustDial(t, srv, cfg12); !c.ConnectionState().DidResume {
		t.Fatal("TLS 1.2 did not resume")
	}
	// Failures: plain HTTP (before any version is known), and a listener
	// that refuses the connection in TLS 1.3.
	ce := tsClientErrors(srv)
	plain, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	plain.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	ce.next(t)
	plain.Close()
	refuse <- true
	if _, err := tsDial(srv, tsClientConfig(p, tls.VersionTLS13)); err == nil {
		t.Fatal("a refused connection was served")
	}
	ce.next(t)
	waitFor(t, func() bool { return srv.Connections() == 0 })

	s = m.Collect(t)
	for _, c := range []struct {
		attrs []string
		want  int64
	}{
		{[]string{"tlsemit.handshake.outcome=full", "tls.protocol.version=1.3"}, 2},
		{[]string{"tlsemit.handshake.outcome=full", "tls.protocol.version=1.2"}, 1},
		{[]string{"tlsemit.handshake.outcome=resumed", "tls.protocol.version=1.2"}, 1},
		{[]string{"tlsemit.handshake.outcome=failed", "tls.protocol.version=1.3"}, 1},
		{[]string{"tlsemit.handshake.outcome=failed"}, 2}, // plain HTTP: no version
	} {
		if got := s.Int(mHandshakes, c.attrs...); got != c.want {
			t.Errorf("%v: %d, want %d\n%s", c.attrs, got, c.want, s.Points(mHandshakes))
		}
	}
	if n, sum := s.Histogram(mHandshakeDur, "tlsemit.handshake.outcome=full", "tls.protocol.version=1.3"); n != 2 || sum < 0.040 {
		t.Errorf("full TLS 1.3 handshake durations: %d, %gs in all; want 2, each including the listener's 20 ms\n%s", n, sum, s.Points(mHandshakeDur))
	}
	if n, _ := s.Histogram(mHandshakeDur); n != 6 {
		t.Errorf("%d handshake durations, want 6\n%s", n, s.Points(mHandshakeDur))
	}
	// 'OCSPRequest' waits: 3 stapled (the resumed handshake has none), 1 refused.
	if n, sum := s.Histogram(mOCSPDur, "tlsemit.ocsp_request.outcome=stapled"); n != 3 || sum < 0.060 {
		t.Errorf("stapled 'OCSPRequest' waits: %d, %gs; want 3 of at least 20 ms\n%s", n, sum, s.Points(mOCSPDur))
	}
	if n, _ := s.Histogram(mOCSPDur, "tlsemit.ocsp_request.outcome=failed"); n != 1 {
		t.Errorf("failed 'OCSPRequest' waits: %d, want 1\n%s", n, s.Points(mOCSPDur))
	}
	if got := s.Int(mClientErrors, "error.type=ERR_SSL_HTTP_REQUEST"); got != 1 {
		t.Errorf("ERR_SSL_HTTP_REQUEST: %d\n%s", got, s.Points(mClientErrors))
	}
	if got := s.Int(mClientErrors, "error.type=ECONNREFUSED"); got != 1 {
		t.Errorf("ECONNREFUSED: %d\n%s", got, s.Points(mClientErrors))
	}
	if s.Scope(mHandshakes) != "github.com/tlsemit/tlsemit/tlsserver" {
		t.Errorf("meter %q", s.Scope(mHandshakes))
	}

	st := srv.Stats()
	if st.FullHandshakes != 3 || st.ResumedHandshakes != 1 || st.FailedHandshakes != 2 {
		t.Errorf("Stats: %+v", st)
	}
	if len(st.RecentClientErrors) != 2 || st.RecentClientErrors[0].Code != "ECONNREFUSED" || st.RecentClientErrors[1].Code != "ERR_SSL_HTTP_REQUEST" ||
		st.ClientErrors["ECONNREFUSED"] != 1 || st.RecentClientErrors[0].RemoteAddr == nil {
		t.Errorf("Stats client errors, newest first: %+v %v", st.RecentClientErrors, st.ClientErrors)
	}

	// A closed server is no longer observed.
	srv.Close()
	waitFor(t, func() bool { s = m.Collect(t); return !s.Has(mHandshakes) || s.Int(mHandshakes) == 0 })
}

// TestMetricsConnections: open connections (held in the backlog, nobody
// accepting them), one over MaxConnections dropped, then none open.
func TestMetricsConnections(t *testing.T) {
	p := newTSPKI(t)
	m := metrictest.New(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.MeterProvider = m.Provider; o.MaxConnections = 3 })
	var held []*tls.Conn
	for range 3 {
		held = append(held, tsMustDial(t, srv, tsClientConfig(p, 0)))
	}
	if s := m.Collect(t); s.Int(mActive) != 3 {
		t.Errorf("active connections: %s", s.Points(mActive))
	}
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("a connection over MaxConnections was served")
	}
	waitFor(t, func() bool { return srv.Stats().Drops == 1 })
	for _, c := range held {
		c.Close()
	}
	srv.Listener().Close() // drops the connections waiting in the backlog
	waitFor(t, func() bool { return srv.Connections() == 0 })
	s := m.Collect(t)
	if s.Int(mDropped, "tlsemit.drop.reason=max_connections") != 1 || s.Int(mDropped, "tlsemit.drop.reason=not_accepted") != 3 {
		t.Errorf("drops: %s", s.Points(mDropped))
	}
	if s.Int(mActive) != 0 {
		t.Errorf("active connections after closing: %s", s.Points(mActive))
	}
	if st := srv.Stats(); st.Drops != 4 || st.Connections != 0 {
		t.Errorf("Stats: %+v", st)
	}
}

// TestMetricsGlobalProvider: without Options.MeterProvider, the server
// reports to the provider the application installed globally.
func TestMetricsGlobalProvider(t *testing.T) {
	p := newTSPKI(t)
	m := metrictest.New(t)
	otel.SetMeterProvider(m.Provider)
	t.Cleanup(func() { otel.SetMeterProvider(noop.NewMeterProvider()) })
	srv := tsServer(t, p, nil)
	tsMustDial(t, srv, tsClientConfig(p, tls.VersionTLS13)).Close()
	waitFor(t, func() bool { return srv.Stats().FullHandshakes == 1 }) // the client may finish first
	if s := m.Collect(t); s.Int(mHandshakes, "tlsemit.handshake.outcome=full") != 1 {
		t.Fatalf("global provider: %s", s.Points(mHandshakes))
	}
}

// TestStatsWithoutProvider: the counters behind the metrics are kept
// with no provider at all, for Stats; a client error without a Node code
// counts under "".
func TestStatsWithoutProvider(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(errors.New("no code"), nil) })
	ce := tsClientErrors(srv)
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("served")
	}
	ce.next(t)
	st := srv.Stats()
	if st.FailedHandshakes != 1 || st.ClientErrors[""] != 1 || len(st.RecentClientErrors) != 1 || st.RecentClientErrors[0].Err == nil {
		t.Fatalf("%+v", st)
	}
}
