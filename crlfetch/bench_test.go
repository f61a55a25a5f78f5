//go:build linux

package crlfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/cputime"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// largeFetcher holds the 1,000,000-entry CRL of crltest.LargeCRL, as a
// file Source, and returns a client certificate of its CA that it does not
// list.
func largeFetcher(b *testing.B) (*Fetcher, *crltest.Large, *testpki.Leaf) {
	l := crltest.LargeCRL(b, 1_000_000)
	path := filepath.Join(b.TempDir(), "large.crl")
	if err := os.WriteFile(path, l.DER, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := New(Options{Sources: []Source{{File: path, Issuer: l.CA.Cert}}, FilePollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	client := l.CA.Issue(b, testpki.LeafOptions{CommonName: "client", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return f, l, client
}

// BenchmarkHandshakeCRL alternates, handshake by handshake, a crypto/tls
// server requiring and verifying client certificates, without and with a
// Fetcher's VerifyConnection holding a 1,000,000-entry CRL of the client's
// CA (the client and the CA both checked against it, as Node does), full
// TLS 1.3 handshakes over net.Pipe. It reports the server goroutine's CPU
// time per handshake for both and their ratio (target ≤ 1.03).
func BenchmarkHandshakeCRL(b *testing.B) {
	f, l, client := largeFetcher(b)
	server := l.CA.Issue(b, testpki.LeafOptions{}).TLSCertificate(false)
	pool := x509.NewCertPool()
	pool.AddCert(l.CA.Cert)
	plain := &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13}
	withCRL := plain.Clone()
	withCRL.VerifyConnection = f.VerifyConnection
	clientCfg := &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{client.TLSCertificate(false)}}
	handshake := func(cfg *tls.Config) time.Duration {
		c, s := net.Pipe()
		res := make(chan time.Duration, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := cputime.Thread()
			err := tls.Server(s, cfg).Handshake()
			d := cputime.Thread() - t0
			if err != nil {
				d = -1
			}
			s.Close()
			res <- d
		}()
		cli := tls.Client(c, clientCfg)
		if err := cli.Handshake(); err != nil {
			b.Fatal(err)
		}
		cli.Read(make([]byte, 1)) // the server's verdict on the client certificate
		c.Close()
		d := <-res
		if d < 0 {
			b.Fatal("server handshake failed")
		}
		return d
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
	if f.stats.passed.Load() == 0 {
		b.Fatal("the Fetcher checked nothing")
	}
	n := float64(b.N)
	b.ReportMetric(float64(plainCPU.Nanoseconds())/n, "plain-server-ns/hs")
	b.ReportMetric(float64(crlCPU.Nanoseconds())/n, "crlfetch-server-ns/hs")
	b.ReportMetric(float64(crlCPU)/float64(plainCPU), "ratio")
}

// BenchmarkCheckCRL is Check of a verified chain (client and CA) against
// the 1,000,000-entry CRL: the whole of what a handshake pays for it.
func BenchmarkCheckCRL(b *testing.B) {
	f, l, client := largeFetcher(b)
	chains := [][]*x509.Certificate{{client.Cert, l.CA.Cert}}
	ctx := context.Background()
	for b.Loop() {
		if err := f.Check(ctx, chains); err != nil {
			b.Fatal(err)
		}
	}
}
