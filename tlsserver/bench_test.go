//go:build linux

package tlsserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tlsemit/tlsemit/internal/cputime"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

type benchEnv struct {
	cert   tls.Certificate
	staple []byte
	client *tls.Config
}

func newBenchEnv(b *testing.B) *benchEnv {
	ca := testpki.NewCA(b, "bench root")
	leaf := ca.Issue(b, testpki.LeafOptions{})
	return &benchEnv{
		cert:   leaf.TLSCertificate(true),
		staple: ca.OCSPResponse(b, leaf.Cert, testpki.ResponseOptions{}),
		client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, ServerName: "localhost"},
	}
}

// plainHandshake runs one crypto/tls server handshake with a static
// OCSPStaple and returns the server goroutine's CPU time and the conns.
func (e *benchEnv) plainHandshake(b *testing.B, cfg *tls.Config) (time.Duration, *tls.Conn, *tls.Conn) {
	cs, ss := net.Pipe()
	res := make(chan time.Duration, 1)
	srv := tls.Server(ss, cfg)
	go func() {
		runtime.LockOSThread()
		t0 := cputime.Thread()
		err := srv.Handshake()
		d := cputime.Thread() - t0
		runtime.UnlockOSThread()
		if err != nil {
			d = -1
		}
		res <- d
	}()
	c := tls.Client(cs, e.client)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	d := <-res
	if d < 0 || len(c.ConnectionState().OCSPResponse) == 0 {
		b.Fatal("plain handshake failed or no staple")
	}
	return d, c, srv
}

// emitServer is a tlsserver whose 'OCSPRequest' listener answers from
// memory; 'connection' and 'secureConnection' (same goroutine as the
// handshake) measure the handshake goroutine's CPU time.
type emitServer struct {
	srv  *tlsserver.Server
	res  chan time.Duration
	conn chan *tls.Conn
}

func (e *benchEnv) newEmitServer(b *testing.B, mp metric.MeterProvider) *emitServer {
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{e.cert}, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	es := &emitServer{srv: srv, res: make(chan time.Duration, 1), conn: make(chan *tls.Conn, 1)}
	var t0 time.Duration
	srv.OnConnection(func(net.Conn) {
		runtime.LockOSThread()
		t0 = cputime.Thread()
	})
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, e.staple) })
	srv.OnSecureConnection(func(c *tls.Conn) {
		d := cputime.Thread() - t0
		runtime.UnlockOSThread()
		es.res <- d
		es.conn <- c
	})
	srv.OnTLSClientError(func(err error, _ net.Conn) {
		runtime.UnlockOSThread()
		b.Error(err)
		es.res <- -1
	})
	return es
}

func (es *emitServer) handshake(b *testing.B, e *benchEnv) (time.Duration, *tls.Conn, *tls.Conn) {
	cs, ss := net.Pipe()
	es.srv.ServeConn(ss)
	c := tls.Client(cs, e.client)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	d := <-es.res
	if d < 0 || len(c.ConnectionState().OCSPResponse) == 0 {
		b.Fatal("handshake failed or no staple")
	}
	return d, c, <-es.conn
}

// BenchmarkHandshakeOCSP alternates, handshake by handshake, a plain
// crypto/tls server serving a static OCSPStaple and a tlsserver whose
// 'OCSPRequest' listener answers from memory (same certificate, full TLS
// 1.3 handshakes over net.Pipe), with no metrics provider installed (the
// global no-op). It reports the server goroutine's CPU time per handshake
// for both and their ratio (target ≤ 1.03).
func BenchmarkHandshakeOCSP(b *testing.B) { benchHandshakeOCSP(b, nil) }

// BenchmarkHandshakeOCSPMetrics is BenchmarkHandshakeOCSP with the
// OpenTelemetry SDK and a manual reader as the server's MeterProvider:
// what recording the metrics costs a handshake.
func BenchmarkHandshakeOCSPMetrics(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	benchHandshakeOCSP(b, mp)
}

func benchHandshakeOCSP(b *testing.B, mp metric.MeterProvider) {
	e := newBenchEnv(b)
	static := e.cert
	static.OCSPStaple = e.staple
	plainCfg := &tls.Config{Certificates: []tls.Certificate{static}, MinVersion: tls.VersionTLS13}
	es := e.newEmitServer(b, mp)
	defer es.srv.Close()
	var plain, emit time.Duration
	for i := 0; b.Loop(); i++ {
		for k := range 2 {
			var d time.Duration
			var c, s *tls.Conn
			if (i+k)%2 == 0 {
				d, c, s = e.plainHandshake(b, plainCfg)
				plain += d
			} else {
				d, c, s = es.handshake(b, e)
				emit += d
			}
			c.NetConn().Close()
			s.Close()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(plain.Nanoseconds())/n, "plain-server-ns/hs")
	b.ReportMetric(float64(emit.Nanoseconds())/n, "tlsserver-server-ns/hs")
	b.ReportMetric(float64(emit)/float64(plain), "ratio")
}

// BenchmarkMemoryPerConnection measures the heap held per established
// connection by tlsserver beyond plain crypto/tls (target ≤ 2048 B).
func BenchmarkMemoryPerConnection(b *testing.B) {
	const n = 200
	e := newBenchEnv(b)
	static := e.cert
	static.OCSPStaple = e.staple
	plainCfg := &tls.Config{Certificates: []tls.Certificate{static}, MinVersion: tls.VersionTLS13}
	es := e.newEmitServer(b, nil)
	defer es.srv.Close()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	measure := func(hs func() (*tls.Conn, *tls.Conn)) float64 {
		var keep []*tls.Conn
		before := heap()
		for range n {
			c, s := hs()
			keep = append(keep, c, s)
		}
		after := heap()
		for _, c := range keep {
			c.NetConn().Close()
		}
		return float64(after-before) / n
	}
	var plainB, emitB float64
	for b.Loop() {
		plainB += measure(func() (*tls.Conn, *tls.Conn) { _, c, s := e.plainHandshake(b, plainCfg); return c, s })
		emitB += measure(func() (*tls.Conn, *tls.Conn) { _, c, s := es.handshake(b, e); return c, s })
	}
	b.ReportMetric(plainB/float64(b.N), "plain-B/conn")
	b.ReportMetric(emitB/float64(b.N), "tlsserver-B/conn")
	b.ReportMetric((emitB-plainB)/float64(b.N), "extra-B/conn")
}

// BenchmarkHandshakeStaticCRL alternates, handshake by handshake, two
// tlsservers requiring and verifying client certificates, the same but
// for Options.CRL: none, and the 1,000,000-entry CRL of crltest.LargeCRL,
// issued by the client's CA (the client and the CA both checked against
// it, as Node does). Full TLS 1.3 handshakes over net.Pipe. It reports
// the server goroutine's CPU time per handshake for both and their ratio
// (target ≤ 1.03).
func BenchmarkHandshakeStaticCRL(b *testing.B) {
	l := crltest.LargeCRL(b, 1_000_000)
	server := l.CA.Issue(b, testpki.LeafOptions{}).TLSCertificate(false)
	client := l.CA.Issue(b, testpki.LeafOptions{CommonName: "client", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	clientCfg := &tls.Config{RootCAs: l.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{client.TLSCertificate(false)}}
	type mtls struct {
		srv *tlsserver.Server
		res chan time.Duration
	}
	start := func(crls [][]byte) *mtls {
		srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{server}, CA: []*x509.Certificate{l.CA.Cert},
			CRL: crls, Config: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}})
		if err != nil {
			b.Fatal(err)
		}
		m := &mtls{srv: srv, res: make(chan time.Duration, 1)}
		var t0 time.Duration
		srv.OnConnection(func(net.Conn) {
			runtime.LockOSThread()
			t0 = cputime.Thread()
		})
		srv.OnSecureConnection(func(c *tls.Conn) {
			d := cputime.Thread() - t0
			runtime.UnlockOSThread()
			c.Close()
			m.res <- d
		})
		srv.OnTLSClientError(func(err error, _ net.Conn) {
			runtime.UnlockOSThread()
			b.Error(err)
			m.res <- 0
		})
		return m
	}
	plain, withCRL := start(nil), start([][]byte{l.DER})
	defer plain.srv.Close()
	defer withCRL.srv.Close()
	handshake := func(m *mtls) time.Duration {
		cs, ss := net.Pipe()
		m.srv.ServeConn(ss)
		c := tls.Client(cs, clientCfg)
		if err := c.Handshake(); err != nil {
			b.Fatal(err)
		}
		c.Read(make([]byte, 1)) // until the server, done, closes
		c.Close()
		return <-m.res
	}
	var plainCPU, crlCPU time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			plainCPU += handshake(plain)
			crlCPU += handshake(withCRL)
		} else {
			crlCPU += handshake(withCRL)
			plainCPU += handshake(plain)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(plainCPU.Nanoseconds())/n, "plain-server-ns/hs")
	b.ReportMetric(float64(crlCPU.Nanoseconds())/n, "crl-server-ns/hs")
	b.ReportMetric(float64(crlCPU)/float64(plainCPU), "ratio")
}
