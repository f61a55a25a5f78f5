package statuspage_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/statuspage"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// BenchmarkStatusPageUnderLoad measures the handshakes per second of a
// server (full handshakes, stapled from the cache, from 2 client
// goroutines in the same process) alone, then while 200 clients fetch its
// status page, of 10,000 certificates, as fast as they can; each
// iteration measures both, for window each. It reports both rates, their
// ratio (target ≥ 0.9) and the page's p50 and p99 latency.
func BenchmarkStatusPageUnderLoad(b *testing.B) {
	const certs, fetchers, window = 10000, 200, 3 * time.Second
	ca := testpki.NewCA(b, "load CA")
	var leaf *testpki.Leaf
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(ca.OCSPResponse(b, leaf.Cert, testpki.ResponseOptions{}))
	}))
	defer responder.Close()
	leaf = ca.Issue(b, testpki.LeafOptions{OCSPServer: []string{responder.URL}})
	f, err := ocspfetch.New(ocspfetch.Options{HTTPClient: responder.Client()})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Staple(context.Background(), leaf.DER, ca.DER); err != nil {
		b.Fatal(err)
	}
	// The other certificates name no responder: each is a row with its
	// error, as much to render as a stapled one.
	for i := range certs - 1 {
		l := ca.Issue(b, testpki.LeafOptions{DNSNames: []string{fmt.Sprintf("host-%d.example.test", i)}})
		f.OCSPRequest(l.DER, ca.DER, func(error, []byte) {})
	}
	if n := len(f.Certificates()); n != certs {
		b.Fatalf("%d certificates tracked", n)
	}
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{leaf.TLSCertificate(true)}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	srv.OnOCSPRequest(f.OCSPRequest)
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	page := httptest.NewServer(statuspage.Handler(srv, f))
	defer page.Close()

	// handshakes counts full, stapled handshakes made in d.
	handshakes := func(d time.Duration) float64 {
		var n atomic.Int64
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
				for time.Now().Before(end) {
					c, err := tls.Dial("tcp", srv.Addr().String(), cfg)
					if err != nil {
						b.Error(err)
						return
					}
					stapled := c.ConnectionState().OCSPResponse != nil
					c.Close()
					if !stapled {
						b.Error("not stapled")
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / d.Seconds()
	}
	// hammer has fetchers clients get the page until stop is called; it
	// returns each fetch's latency.
	hammer := func() (stop func() []time.Duration) {
		done := make(chan struct{})
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		// Browsers elsewhere: the body is taken as sent (gzip), not
		// inflated here, where it would compete with the handshakes.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: fetchers, DisableCompression: true,
			DialContext: (&net.Dialer{}).DialContext}}
		for range fetchers {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					t0 := time.Now()
					req, _ := http.NewRequest(http.MethodGet, page.URL, nil)
					req.Header.Set("Accept-Encoding", "gzip")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || n < certs*10 {
						b.Errorf("page: %s, %d bytes", resp.Status, n)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		return func() []time.Duration {
			close(done)
			wg.Wait()
			client.CloseIdleConnections()
			return lat
		}
	}

	var alone, hammered float64
	var lat []time.Duration
	for b.Loop() {
		alone += handshakes(window)
		stop := hammer()
		hammered += handshakes(window)
		lat = append(lat, stop()...)
	}
	if len(lat) == 0 {
		b.Fatal("no page fetched")
	}
	slices.Sort(lat)
	n := float64(b.N)
	b.ReportMetric(alone/n, "alone-hs/s")
	b.ReportMetric(hammered/n, "hammered-hs/s")
	b.ReportMetric(hammered/alone, "ratio")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "page-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "page-p99-ms")
	b.ReportMetric(float64(len(lat))/n, "pages/op")
}
