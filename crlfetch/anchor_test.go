package crlfetch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// clientCAs is a ClientCAs pool holding cas.
func clientCAs(cas ...*testpki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// TestIntermediateInClientCAs: with the root and its intermediate both
// in ClientCAs, crypto/x509 ends a chain at the intermediate; Node builds
// it on to the root, whose CRL lists the intermediate, and refuses the
// client with CERT_REVOKED (crl_check_all). So does the Fetcher, whether
// the client sends its intermediate (crypto/x509 then also returns the
// whole chain) or not (only the chain that stops at the intermediate),
// over TLS 1.2 and 1.3, when it knows the root: from a Source of the
// root's CRL, a URL (the one the intermediate's distribution point
// names: one fetch for both) or a file (Node's crl, ported). With
// clean CRLs the client passes.
func TestIntermediateInClientCAs(t *testing.T) {
	for _, kind := range []string{"url", "file"} {
		t.Run(kind, func(t *testing.T) {
			m := newMTLS(t)
			m.host.Set("/inter.crl", m.inter.CRL(t, testpki.CRLOptions{}))
			revInter := m.root.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{m.inter.Cert.SerialNumber}})
			m.host.Set("/root.crl", revInter)
			src := Source{URL: m.host.URL + "/root.crl", Issuer: m.root.Cert}
			if kind == "file" {
				src = Source{File: filepath.Join(t.TempDir(), "root.crl"), Issuer: m.root.Cert}
				if err := os.WriteFile(src.File, revInter, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f, _ := newFetcher(t, Options{Sources: []Source{src}})
			cfg := m.serverConfig(f)
			cfg.ClientCAs = clientCAs(m.root, m.inter)
			for _, withChain := range []bool{true, false} {
				for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
					err := handshakeChain(t, m, cfg, m.good, withChain, v)
					var e *crl.Error
					if crl.Code(err) != "CERT_REVOKED" || !errors.As(err, &e) || e.Cert == nil || !e.Cert.Equal(m.inter.Cert) || e.Depth != 1 {
						t.Errorf("client sends its intermediate %v, TLS %x: %v, want CERT_REVOKED for the intermediate at depth 1", withChain, v, err)
					}
				}
			}
			if err := f.Check(t.Context(), [][]*x509.Certificate{{m.good.Cert, m.inter.Cert}}); !errors.Is(err, ErrRevoked) {
				t.Errorf("Check of the chain that stops at the intermediate: %v", err)
			}
			if kind == "url" && m.host.Hits("/root.crl") != 1 {
				t.Errorf("the root's CRL fetched %d times, want once (Source and distribution point share it)", m.host.Hits("/root.crl"))
			}
			// The root's CRL clean (file and distribution point): served,
			// with or without the intermediate.
			cleanRoot := m.root.CRL(t, testpki.CRLOptions{})
			m.host.Set("/root.crl", cleanRoot)
			clean, _ := newFetcher(t, Options{Sources: []Source{{File: writeTemp(t, cleanRoot), Issuer: m.root.Cert}}})
			cfg = m.serverConfig(clean)
			cfg.ClientCAs = clientCAs(m.root, m.inter)
			for _, withChain := range []bool{true, false} {
				if err := handshakeChain(t, m, cfg, m.good, withChain, tls.VersionTLS13); err != nil {
					t.Errorf("clean CRLs, client sends its intermediate %v: %v", withChain, err)
				}
			}
		})
	}
}

// TestUnknownAnchorFailsClosed: a chain that crypto/x509 ends at an
// intermediate whose issuer the Fetcher does not know (no Source names
// it) cannot have the intermediate checked: UNABLE_TO_GET_CRL at the
// intermediate, as Node refuses a chain that does not reach a
// self-signed root, and the intermediate's own distribution point (the
// root's CRL, which the Fetcher could not verify) is not fetched. A
// client that sends its intermediate is judged on the whole chain that
// crypto/x509 also builds; FailOpen lets the other pass; LeafOnly checks
// the client's certificate alone, as before; a Source of the root's CRL
// given for an intermediate alone in ClientCAs lets it be checked.
func TestUnknownAnchorFailsClosed(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{}) // clean root CRL; the intermediate's lists m.bad
	f, rec := newFetcher(t, Options{})
	cfg := m.serverConfig(f)
	cfg.ClientCAs = clientCAs(m.root, m.inter)

	err := handshakeChain(t, m, cfg, m.good, false, tls.VersionTLS13)
	var e *crl.Error
	if crl.Code(err) != "UNABLE_TO_GET_CRL" || !errors.As(err, &e) || !e.Cert.Equal(m.inter.Cert) || e.Depth != 1 ||
		!errors.Is(err, crl.ErrUnknownAnchor) || !errors.Is(err, ErrNoCRL) {
		t.Fatalf("leaf alone: %v, want UNABLE_TO_GET_CRL for the intermediate", err)
	}
	if ev, ok := rec.last(EventRefused); !ok || ev.Code != "UNABLE_TO_GET_CRL" {
		t.Fatalf("event %+v", ev)
	}
	if n := m.host.Hits("/root.crl"); n != 0 {
		t.Fatalf("the root's CRL fetched %d times without the root to verify it", n)
	}
	if err := handshakeChain(t, m, cfg, m.bad, false, tls.VersionTLS13); !errors.Is(err, ErrRevoked) || crl.Code(err) != "UNABLE_TO_GET_CRL" {
		t.Fatalf("revoked leaf alone: %v, want UNABLE_TO_GET_CRL wrapping its revocation", err)
	}
	// With its intermediate, the chain to the root is there and decides.
	if err := handshakeChain(t, m, cfg, m.good, true, tls.VersionTLS13); err != nil {
		t.Fatalf("leaf and intermediate: %v", err)
	}
	if err := handshakeChain(t, m, cfg, m.bad, true, tls.VersionTLS13); crl.Code(err) != "CERT_REVOKED" {
		t.Fatalf("revoked leaf and intermediate: %v", err)
	}
	m.host.Set("/root.crl", m.root.CRL(t, testpki.CRLOptions{Number: big.NewInt(2), Revoked: []*big.Int{m.inter.Cert.SerialNumber}}))
	revoked, _ := newFetcher(t, Options{})
	rcfg := m.serverConfig(revoked)
	rcfg.ClientCAs = cfg.ClientCAs
	if err := handshakeChain(t, m, rcfg, m.good, true, tls.VersionTLS13); crl.Code(err) != "CERT_REVOKED" || !errors.As(err, &e) || e.Depth != 1 {
		t.Fatalf("intermediate revoked, sent: %v", err)
	}
	if err := handshakeChain(t, m, rcfg, m.good, false, tls.VersionTLS13); crl.Code(err) != "UNABLE_TO_GET_CRL" {
		t.Fatalf("intermediate revoked, not sent: %v", err)
	}

	// FailOpen: revocation unknown, so it passes, reported.
	open, orec := newFetcher(t, Options{FailOpen: true})
	ocfg := m.serverConfig(open)
	ocfg.ClientCAs = cfg.ClientCAs
	if err := handshakeChain(t, m, ocfg, m.good, false, tls.VersionTLS13); err != nil {
		t.Fatalf("FailOpen: %v", err)
	}
	if ev, ok := orec.last(EventFailedOpen); !ok || ev.Code != "UNABLE_TO_GET_CRL" {
		t.Fatalf("FailOpen event %+v", ev)
	}

	// LeafOnly: the intermediate is not checked, known or not.
	leafOnly, _ := newFetcher(t, Options{LeafOnly: true})
	lcfg := m.serverConfig(leafOnly)
	lcfg.ClientCAs = cfg.ClientCAs
	if err := handshakeChain(t, m, lcfg, m.good, false, tls.VersionTLS13); err != nil {
		t.Fatalf("LeafOnly: %v", err)
	}
	if err := handshakeChain(t, m, lcfg, m.bad, false, tls.VersionTLS13); crl.Code(err) != "CERT_REVOKED" {
		t.Fatalf("LeafOnly, revoked: %v", err)
	}

	// The intermediate alone in ClientCAs, the root known from a Source.
	withRoot, _ := newFetcher(t, Options{Sources: []Source{{URL: m.host.URL + "/root.crl", Issuer: m.root.Cert}}})
	icfg := m.serverConfig(withRoot)
	icfg.ClientCAs = clientCAs(m.inter)
	if err := handshakeChain(t, m, icfg, m.good, false, tls.VersionTLS13); crl.Code(err) != "CERT_REVOKED" || !errors.As(err, &e) || e.Depth != 1 {
		t.Fatalf("intermediate alone in ClientCAs, revoked by the root: %v", err)
	}
	icfg.ClientCAs = clientCAs(m.inter)
	noRoot, _ := newFetcher(t, Options{})
	icfg.VerifyConnection = noRoot.VerifyConnection
	if err := handshakeChain(t, m, icfg, m.good, false, tls.VersionTLS13); crl.Code(err) != "UNABLE_TO_GET_CRL" {
		t.Fatalf("intermediate alone in ClientCAs, root unknown: %v", err)
	}
}

// TestCheckAllocatesNothing: a check that passes allocates nothing: a
// chain to a self-signed root, one that stops at an intermediate whose
// way up a Source gives, and the chain to the root after one that stops
// at an intermediate whose issuer is unknown.
func TestCheckAllocatesNothing(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	plain, _ := newFetcher(t, Options{})
	sourced, _ := newFetcher(t, Options{Sources: []Source{{URL: m.host.URL + "/root.crl", Issuer: m.root.Cert}}})
	full := []*x509.Certificate{m.good.Cert, m.inter.Cert, m.root.Cert}
	short := []*x509.Certificate{m.good.Cert, m.inter.Cert}
	for _, tc := range []struct {
		name   string
		f      *Fetcher
		chains [][]*x509.Certificate
	}{
		{"chain to the root", plain, [][]*x509.Certificate{full}},
		{"intermediate as anchor, root from a Source", sourced, [][]*x509.Certificate{short}},
		{"chain to the root after one cut short", plain, [][]*x509.Certificate{short, full}},
	} {
		cs := tls.ConnectionState{PeerCertificates: tc.chains[0][:1], VerifiedChains: tc.chains}
		if err := tc.f.VerifyConnection(cs); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := testing.AllocsPerRun(100, func() { tc.f.VerifyConnection(cs) }); n != 0 {
			t.Errorf("%s: %v allocations per check", tc.name, n)
		}
	}
}

// writeTemp writes b to a file of its own and returns its path.
func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crl")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// handshakeChain runs one TLS handshake of leaf, sending its
// intermediate or not, against cfg and returns the server's error. Over
// loopback TCP, not net.Pipe: a server refusing the client's certificate
// in TLS 1.2 writes its alert while the client is still writing.
func handshakeChain(t *testing.T, m *mtls, cfg *tls.Config, leaf *testpki.Leaf, withChain bool, version uint16) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		err = tls.Server(s, cfg).Handshake()
		s.Close()
		errc <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli := tls.Client(c, &tls.Config{RootCAs: m.root.Pool(), ServerName: "localhost", MinVersion: version, MaxVersion: version,
		Certificates: []tls.Certificate{leaf.TLSCertificate(withChain)}})
	cli.Handshake()
	if version == tls.VersionTLS13 {
		cli.Read(make([]byte, 1)) // the server's verdict on the client certificate comes after
	}
	c.Close()
	return <-errc
}
