package ocspfetch

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// hotFetcher returns a Fetcher with a Good staple cached for s.leaf.
func hotFetcher(tb testing.TB) (*Fetcher, *scripted) {
	clk := newClock()
	s := newScripted(tb, clk)
	f, _ := newFetcher(tb, Options{Now: clk.Now})
	if res := request(tb, f, s.leaf.DER, s.ca.DER); res.der == nil {
		tb.Fatal("no staple")
	}
	return f, s
}

// TestCacheHitAllocs: the cache hit path of OCSPRequest allocates nothing
// and calls back on the caller's goroutine, before returning.
func TestCacheHitAllocs(t *testing.T) {
	f, s := hotFetcher(t)
	cert, issuer := s.leaf.DER, s.ca.DER
	var got []byte
	called := false
	cb := func(err error, der []byte) { got, called = der, true }
	allocs := testing.AllocsPerRun(1000, func() {
		called = false
		f.OCSPRequest(cert, issuer, cb)
		if !called {
			panic("callback not called synchronously on a cache hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("cache hit allocates %v times per call, want 0", allocs)
	}
	if got == nil {
		t.Fatal("cache hit stapled nothing")
	}
	if before := s.requests.Load(); before != 1 {
		t.Fatalf("%d requests", before)
	}
}

// BenchmarkOCSPRequestHit measures the handshake's cost of a cached staple.
func BenchmarkOCSPRequestHit(b *testing.B) {
	f, s := hotFetcher(b)
	cert, issuer := s.leaf.DER, s.ca.DER
	var n int
	cb := func(err error, der []byte) { n += len(der) }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.OCSPRequest(cert, issuer, cb)
	}
	if n == 0 {
		b.Fatal("nothing stapled")
	}
}

// BenchmarkGetCertificateHit measures what the GetCertificate wrapper adds
// to a handshake that asks for a cached staple (the connection's copy of
// the certificate), beside BenchmarkGetCertificateNotAsked (a ClientHello
// without status_request: get's own cost only).
func BenchmarkGetCertificateHit(b *testing.B) {
	f, s := hotFetcher(b)
	cert := s.leaf.TLSCertificate(true)
	get := f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	hello := &tls.ClientHelloInfo{Extensions: []uint16{statusRequest}}
	b.ReportAllocs()
	for b.Loop() {
		c, err := get(hello)
		if err != nil || c.OCSPStaple == nil {
			b.Fatal("nothing stapled")
		}
		certSink = c // as crypto/tls keeps it: the copy is not optimised away
	}
}

var certSink *tls.Certificate

// BenchmarkGetCertificateNotAsked: see BenchmarkGetCertificateHit.
func BenchmarkGetCertificateNotAsked(b *testing.B) {
	f, s := hotFetcher(b)
	cert := s.leaf.TLSCertificate(true)
	get := f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	hello := &tls.ClientHelloInfo{}
	b.ReportAllocs()
	for b.Loop() {
		c, err := get(hello)
		if err != nil || c != &cert {
			b.Fatal("not the certificate itself")
		}
		certSink = c
	}
}

// BenchmarkOCSPRequestHitParallel is the same from every core at once.
func BenchmarkOCSPRequestHitParallel(b *testing.B) {
	f, s := hotFetcher(b)
	cert, issuer := s.leaf.DER, s.ca.DER
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cb := func(err error, der []byte) {
			if der == nil {
				panic("nothing stapled")
			}
		}
		for pb.Next() {
			f.OCSPRequest(cert, issuer, cb)
		}
	})
}

// manyCerts is the fixture of BenchmarkFirstRequests: n certificates
// naming one in-process responder that answers each from responses signed
// beforehand, so that the benchmark measures the Fetcher, not the signing.
type manyCerts struct {
	ca    *testpki.CA
	certs [][]byte
}

func manyCertsFixture(b *testing.B, n int) *manyCerts {
	ca := testpki.NewCA(b, "many CA")
	answers := make(map[string][]byte, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeOCSP(w, answers[decodeRequest(b, r).SerialNumber.String()])
	}))
	b.Cleanup(srv.Close)
	certs := manyLeaves(b, ca, n, srv.URL)
	now := time.Now()
	for _, der := range certs {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: cert.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)}, ca.Key)
		if err != nil {
			b.Fatal(err)
		}
		answers[cert.SerialNumber.String()] = resp
	}
	return &manyCerts{ca: ca, certs: certs}
}

// BenchmarkFirstRequests staples certificates one after another, each on
// its first handshake, from a local responder: a server starting with
// 1,000 or 16,000 certificates. ns/cert is the cost of one; it should not
// grow with the count.
func BenchmarkFirstRequests(b *testing.B) {
	fx := manyCertsFixture(b, 16000) // the parent runs once for both
	for _, n := range []int{1000, 16000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			stapled := 0
			cb := func(err error, der []byte) {
				if der != nil {
					stapled++
				}
			}
			for b.Loop() {
				b.StopTimer()
				f, err := New(Options{HandshakeBudget: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, c := range fx.certs[:n] {
					f.OCSPRequest(c, fx.ca.DER, cb)
				}
				b.StopTimer()
				f.Close()
				b.StartTimer()
			}
			if stapled != b.N*n {
				b.Fatalf("%d of %d first requests stapled", stapled, b.N*n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/cert")
		})
	}
}
