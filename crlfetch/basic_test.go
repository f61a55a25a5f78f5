package crlfetch

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestDistributionPoints: with zero options the CRLs come from the
// certificates' distribution points; a good client passes, a revoked one
// is refused with CERT_REVOKED, over crypto/tls in TLS 1.2 and 1.3.
func TestDistributionPoints(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, rec := newFetcher(t, Options{})
	if err := m.check(f, m.good); err != nil {
		t.Fatalf("good client: %v", err)
	}
	err := m.check(f, m.bad)
	if !errors.Is(err, ErrRevoked) || crl.Code(err) != "CERT_REVOKED" {
		t.Fatalf("revoked client: %v", err)
	}
	if m.host.Hits("/inter.crl") != 1 || m.host.Hits("/root.crl") != 1 {
		t.Fatalf("hits: inter %d root %d", m.host.Hits("/inter.crl"), m.host.Hits("/root.crl"))
	}
	rec.wait(t, EventFetched, 2)
	cfg := m.serverConfig(f)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if err := m.handshake(t, cfg, m.good, v); err != nil {
			t.Fatalf("good client handshake (%x): %v", v, err)
		}
		err := m.handshake(t, cfg, m.bad, v)
		var coded interface{ Code() string }
		if !errors.As(err, &coded) || coded.Code() != "CERT_REVOKED" {
			t.Fatalf("revoked client handshake (%x): %v", v, err)
		}
	}
}
