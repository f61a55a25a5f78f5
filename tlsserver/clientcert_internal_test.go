package tlsserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"reflect"
	"testing"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Issue 18: the CRL check of a chain that passes allocates nothing, also
// for a chain that stops at an intermediate of CA (whose way up is
// checked too).
func TestCRLCheckAllocatesNothing(t *testing.T) {
	root := testpki.NewCA(t, "alloc root")
	inter := root.Intermediate(t, "alloc intermediate")
	leaf := inter.Issue(t, testpki.LeafOptions{CommonName: "client", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	other := []*big.Int{big.NewInt(7), big.NewInt(1 << 40)}
	s, err := New(Options{
		Certificates: []tls.Certificate{root.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)},
		CA:           []*x509.Certificate{root.Cert, inter.Cert},
		CRL:          [][]byte{root.CRL(t, testpki.CRLOptions{Revoked: other}), inter.CRL(t, testpki.CRLOptions{Revoked: other})},
		Config:       &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert},
	})
	if err != nil {
		t.Fatal(err)
	}
	hook := s.sc.Load().config.VerifyConnection
	for _, chains := range [][][]*x509.Certificate{
		{{leaf.Cert, inter.Cert, root.Cert}},
		{{leaf.Cert, inter.Cert}},
		{{leaf.Cert, inter.Cert}, {leaf.Cert, inter.Cert, root.Cert}},
	} {
		cs := tls.ConnectionState{PeerCertificates: chains[0][:1], VerifiedChains: chains}
		if err := hook(cs); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { hook(cs) }); n != 0 {
			t.Errorf("%d chains: %v allocations per check, want 0", len(chains), n)
		}
	}
	// The intermediate's way up is checked: revoked by the root, refused.
	s2, err := New(Options{
		Certificates: []tls.Certificate{root.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)},
		CA:           []*x509.Certificate{root.Cert, inter.Cert},
		CRL:          [][]byte{root.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{inter.Cert.SerialNumber}}), inter.CRL(t, testpki.CRLOptions{})},
		Config:       &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s2.sc.Load().config.VerifyConnection(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf.Cert, inter.Cert}}})
	var ce *crl.Error
	if Code(err) != "CERT_REVOKED" || !errors.As(err, &ce) || ce.Depth != 1 || ce.Cert != inter.Cert {
		t.Fatalf("intermediate revoked by the root: %v", err)
	}
}

// Issue 18: without CRLs a handshake does no revocation work: the
// context's VerifyConnection is the Config's own (nil, or the very same
// function), and a server name whose context has no CA gets no
// per-connection Config. The modes that refuse nothing check nothing in
// the handshake either (Authorized does, when asked).
func TestNoCRLNoWork(t *testing.T) {
	ca := testpki.NewCA(t, "nowork")
	cert := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"localhost", "a.test"}}).TLSCertificate(true)
	crlDER := ca.CRL(t, testpki.CRLOptions{})
	mine := func(tls.ConnectionState) error { return nil }
	for _, tc := range []struct {
		name   string
		auth   tls.ClientAuthType
		crl    [][]byte
		verify func(tls.ConnectionState) error
	}{
		{"no CRL", tls.RequireAndVerifyClientCert, nil, nil},
		{"no CRL, the Config's hook", tls.RequireAndVerifyClientCert, nil, mine},
		{"RequestClientCert with CRL", tls.RequestClientCert, [][]byte{crlDER}, nil},
		{"RequestClientCert with CRL, the Config's hook", tls.RequestClientCert, [][]byte{crlDER}, mine},
	} {
		s, err := New(Options{Certificates: []tls.Certificate{cert}, CA: []*x509.Certificate{ca.Cert}, CRL: tc.crl,
			Config: &tls.Config{ClientAuth: tc.auth, VerifyConnection: tc.verify}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddContext("a.test", SecureContext{Certificates: []tls.Certificate{cert}}); err != nil {
			t.Fatal(err)
		}
		got := s.sc.Load().config.VerifyConnection
		if (got == nil) != (tc.verify == nil) || got != nil && reflect.ValueOf(got).Pointer() != reflect.ValueOf(tc.verify).Pointer() {
			t.Errorf("%s: VerifyConnection is not the Config's own", tc.name)
		}
		c := &serverConn{s: s, sc: s.sc.Load()}
		cfg, err := s.getConfigForClient(&tls.ClientHelloInfo{Conn: c, ServerName: "a.test", SupportedVersions: []uint16{tls.VersionTLS13}})
		if cfg != nil || err != nil {
			t.Errorf("%s: a per-connection Config for a name whose context has no CA", tc.name)
		}
	}
}

// BenchmarkCRLVerifyConnection is the CRL check a handshake pays, in
// VerifyConnection: a client and its CA against the 1,000,000-entry CRL
// of crltest.LargeCRL (target: no allocation).
func BenchmarkCRLVerifyConnection(b *testing.B) {
	l := crltest.LargeCRL(b, 1_000_000)
	client := l.CA.Issue(b, testpki.LeafOptions{CommonName: "client", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	s, err := New(Options{Certificates: []tls.Certificate{l.CA.Issue(b, testpki.LeafOptions{}).TLSCertificate(false)},
		CA: []*x509.Certificate{l.CA.Cert}, CRL: [][]byte{l.DER}, Config: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}})
	if err != nil {
		b.Fatal(err)
	}
	hook := s.sc.Load().config.VerifyConnection
	cs := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{client.Cert, l.CA.Cert}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := hook(cs); err != nil {
			b.Fatal(err)
		}
	}
}
