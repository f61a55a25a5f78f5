package crl

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// pki is root → inter → leaf, as in the Node observations
// (docs/revocation.md).
type pki struct {
	root, inter *testpki.CA
	leaf        *testpki.Leaf
	chain       []*x509.Certificate
}

func newPKI(t *testing.T) *pki {
	root := testpki.NewCA(t, "check root")
	inter := root.Intermediate(t, "check inter")
	leaf := inter.Issue(t, testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return &pki{root, inter, leaf, []*x509.Certificate{leaf.Cert, inter.Cert, root.Cert}}
}

// finder serves CRLs by issuer name, in the order given.
func finder(crls ...*CRL) Finder {
	return func(_, issuer *x509.Certificate) ([]*CRL, error) {
		var out []*CRL
		for _, c := range crls {
			if string(c.RawIssuer) == string(issuer.RawSubject) {
				out = append(out, c)
			}
		}
		return out, nil
	}
}

func mustLoad(t *testing.T, ca *testpki.CA, o testpki.CRLOptions) *CRL {
	t.Helper()
	c, err := Load(ca.CRL(t, o), ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckNodeSemantics replays what Node v20 reports for each
// combination of CRLs (observed on this machine; the same table is in
// docs/revocation.md): the code, and for the certificate at which depth.
func TestCheckNodeSemantics(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	ago, hour := now.Add(-time.Minute).Truncate(time.Second), time.Hour
	interEmpty := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: ago})
	interEmptyNewer := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: ago.Add(30 * time.Second)})
	interRevLeaf := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: ago, Revoked: []*big.Int{p.leaf.Cert.SerialNumber}})
	interExpired := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: now.Add(-2 * hour), NextUpdate: now.Add(-hour)})
	interExpiredRevLeaf := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: now.Add(-2 * hour), NextUpdate: now.Add(-hour), Revoked: []*big.Int{p.leaf.Cert.SerialNumber}})
	interFuture := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: now.Add(hour), NextUpdate: now.Add(2 * hour)})
	rootEmpty := mustLoad(t, p.root, testpki.CRLOptions{ThisUpdate: ago})
	rootRevInter := mustLoad(t, p.root, testpki.CRLOptions{ThisUpdate: ago, Revoked: []*big.Int{p.inter.Cert.SerialNumber}})
	rootRevRoot := mustLoad(t, p.root, testpki.CRLOptions{ThisUpdate: ago, Revoked: []*big.Int{p.root.Cert.SerialNumber}})
	rootExpired := mustLoad(t, p.root, testpki.CRLOptions{ThisUpdate: now.Add(-2 * hour), NextUpdate: now.Add(-hour)})
	for _, tc := range []struct {
		name  string
		crls  []*CRL
		code  string
		depth int
		also  error // a sentinel the error wraps besides its own
	}{
		{"inter-empty only", []*CRL{interEmpty}, "UNABLE_TO_GET_CRL", 2, nil},
		{"inter-empty root-revinter", []*CRL{interEmpty, rootRevInter}, "CERT_REVOKED", 1, nil},
		{"inter-empty root-empty", []*CRL{interEmpty, rootEmpty}, "", 0, nil},
		{"inter-revleaf root-empty", []*CRL{interRevLeaf, rootEmpty}, "CERT_REVOKED", 0, nil},
		{"root-empty only", []*CRL{rootEmpty}, "UNABLE_TO_GET_CRL", 0, nil},
		{"inter-empty root-expired", []*CRL{interEmpty, rootExpired}, "CRL_HAS_EXPIRED", 2, nil},
		{"inter-expired root-empty", []*CRL{interExpired, rootEmpty}, "CRL_HAS_EXPIRED", 0, nil},
		{"inter-future root-empty", []*CRL{interFuture, rootEmpty}, "CRL_NOT_YET_VALID", 0, nil},
		{"inter-empty inter-revleaf (same thisUpdate: the first)", []*CRL{interEmpty, interRevLeaf, rootEmpty}, "", 0, nil},
		{"inter-revleaf inter-empty (same thisUpdate: the first)", []*CRL{interRevLeaf, interEmpty, rootEmpty}, "CERT_REVOKED", 0, nil},
		{"inter-empty root-revroot", []*CRL{interEmpty, rootRevRoot}, "CERT_REVOKED", 2, nil},
		{"inter-expired inter-empty (the valid one)", []*CRL{interExpired, interEmpty, rootEmpty}, "", 0, nil},
		{"inter-revleaf inter-empty-newer (the newer)", []*CRL{interRevLeaf, interEmptyNewer, rootEmpty}, "", 0, nil},
		{"inter-empty-newer inter-revleaf (the newer)", []*CRL{interEmptyNewer, interRevLeaf, rootEmpty}, "", 0, nil},
		{"inter-future inter-empty", []*CRL{interFuture, interEmpty, rootEmpty}, "", 0, nil},
		{"inter-revleaf only (the root's CRL missing wins)", []*CRL{interRevLeaf}, "UNABLE_TO_GET_CRL", 2, ErrRevoked},
		{"inter-revleaf root-expired", []*CRL{interRevLeaf, rootExpired}, "CRL_HAS_EXPIRED", 2, ErrRevoked},
		{"inter-revleaf root-revinter", []*CRL{interRevLeaf, rootRevInter}, "CERT_REVOKED", 1, ErrRevoked},
		{"inter-expired root-revinter", []*CRL{interExpired, rootRevInter}, "CERT_REVOKED", 1, ErrExpired},
		{"expired CRL listing the leaf", []*CRL{interExpiredRevLeaf, rootEmpty}, "CERT_REVOKED", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Policy{}.Check(p.chain, now, finder(tc.crls...))
			if Code(err) != tc.code {
				t.Fatalf("code %q, want %q (%v)", Code(err), tc.code, err)
			}
			if err == nil {
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Depth != tc.depth || e.Cert != p.chain[tc.depth] {
				t.Fatalf("error %v at depth %d, want %d", err, e.Depth, tc.depth)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("%v does not wrap %v", err, tc.also)
			}
		})
	}
}

func TestCheckPolicy(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	interRevLeaf := mustLoad(t, p.inter, testpki.CRLOptions{Revoked: []*big.Int{p.leaf.Cert.SerialNumber}})
	interEmpty := mustLoad(t, p.inter, testpki.CRLOptions{})
	rootEmpty := mustLoad(t, p.root, testpki.CRLOptions{})

	// LeafOnly: the leaf alone (X509_V_FLAG_CRL_CHECK without CRL_CHECK_ALL).
	if err := (Policy{LeafOnly: true}).Check(p.chain, now, finder(interEmpty)); err != nil {
		t.Fatalf("LeafOnly without the root's CRL: %v", err)
	}
	if err := (Policy{LeafOnly: true}).Check(p.chain, now, finder(interRevLeaf)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("LeafOnly, revoked leaf: %v", err)
	}
	// A trust anchor that is not self-issued (an intermediate in the
	// pool) whose issuer is not known: revocation unknown, as Node says
	// (TestCheckAnchors has the rest).
	if err := (Policy{}).Check(p.chain[:2], now, finder(interEmpty)); !errors.Is(err, ErrNoCRL) || !errors.Is(err, ErrUnknownAnchor) {
		t.Fatalf("partial chain: %v", err)
	}
	// Why there is no CRL decides the code, as Node reports a bad CRL.
	sigFail := func(_, _ *x509.Certificate) ([]*CRL, error) {
		return nil, newErr(ErrSignature, "test", nil)
	}
	if err := (Policy{LeafOnly: true}).Check(p.chain, now, sigFail); Code(err) != "CRL_SIGNATURE_FAILURE" {
		t.Fatalf("reason: %v", err)
	}
	// A CRL of the issuer's name verified with another key does not
	// speak for the issuer's certificates.
	impostor := testpki.NewCA(t, "check inter")
	if err := (Policy{LeafOnly: true}).Check(p.chain, now, finder(mustLoad(t, impostor, testpki.CRLOptions{}))); !errors.Is(err, ErrNoCRL) {
		t.Fatalf("CRL of another key: %v", err)
	}
	// Skew and Grace.
	future := mustLoad(t, p.inter, testpki.CRLOptions{ThisUpdate: now.Add(time.Minute).Truncate(time.Second), NextUpdate: now.Add(time.Hour)})
	if err := (Policy{LeafOnly: true, Skew: 5 * time.Minute}).Check(p.chain, now, finder(future)); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	if err := (Policy{LeafOnly: true}).Check(p.chain, now.Add(2*time.Hour), finder(interEmpty)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	if err := (Policy{LeafOnly: true, Grace: 2 * time.Hour}).Check(p.chain, now.Add(2*time.Hour), finder(interEmpty)); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	// Several chains: one that passes is enough; else revoked is said.
	other := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	anchors := NewAnchors([]*x509.Certificate{p.root.Cert, p.inter.Cert})
	if err := (Policy{Anchors: anchors}).CheckChains([][]*x509.Certificate{p.chain, other}, now, finder(interEmpty)); !errors.Is(err, ErrNoCRL) {
		t.Fatalf("no chain passes without the root's CRL: %v", err)
	}
	if err := (Policy{Anchors: anchors}).CheckChains([][]*x509.Certificate{p.chain, other}, now, finder(interEmpty, rootEmpty)); err != nil {
		t.Fatalf("both chains pass: %v", err)
	}
	if err := (Policy{}).CheckChains([][]*x509.Certificate{p.chain, other}, now, finder(interRevLeaf)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked in every chain: %v", err)
	}
	if err := (Policy{LeafOnly: true}).CheckChains([][]*x509.Certificate{{p.leaf.Cert, p.root.Cert}, other}, now, finder(interEmpty)); err != nil {
		t.Fatalf("second chain passes: %v", err)
	}
	// No allocation when the chain passes.
	find := finder(interEmpty, rootEmpty)
	found := map[string][]*CRL{string(p.inter.Cert.RawSubject): {interEmpty}, string(p.root.Cert.RawSubject): {rootEmpty}}
	find = func(_, issuer *x509.Certificate) ([]*CRL, error) { return found[string(issuer.RawSubject)], nil }
	if n := testing.AllocsPerRun(100, func() {
		if (Policy{}).Check(p.chain, now, find) != nil {
			t.Fatal("check failed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// cdp is a CRLDistributionPoints extension with one distribution point
// per URI, or one that names a CRL issuer when crlIssuer is set.
func cdp(crlIssuer bool, uris ...string) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, u := range uris {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					})
				})
				if crlIssuer {
					b.AddASN1(casn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte("http://other/")) })
					})
				}
			})
		}
	})
	return pkix.Extension{Id: oidCRLDistributionPoints, Value: b.BytesOrPanic()}
}

// TestCovers: a partition of a sharded CRL (issuing distribution point)
// covers only its own certificates; onlyContainsUserCerts/CACerts.
func TestCovers(t *testing.T) {
	ca := testpki.NewCA(t, "scope CA")
	subCA := ca.Intermediate(t, "scope sub CA")
	withCDP := func(ext ...pkix.Extension) *x509.Certificate {
		c := *ca.Issue(t, testpki.LeafOptions{}).Cert
		c.Extensions = append(append([]pkix.Extension(nil), c.Extensions...), ext...)
		return &c
	}
	part1 := withCDP(cdp(false, "http://crl.example/1.crl"))
	part2 := withCDP(cdp(false, "http://crl.example/2.crl"))
	both := withCDP(cdp(false, "http://crl.example/2.crl", "http://crl.example/1.crl"))
	none := ca.Issue(t, testpki.LeafOptions{}).Cert
	indirect := withCDP(cdp(true, "http://crl.example/1.crl"))
	load := func(idp crltest.IDP) *CRL {
		c, err := Load(crltest.Build(t, crltest.Spec{Issuer: ca, Extensions: []crltest.Ext{idp.Ext()}}), ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	shard1 := load(crltest.IDP{URIs: []string{"http://crl.example/1.crl"}})
	users := load(crltest.IDP{OnlyUser: true})
	cas := load(crltest.IDP{OnlyCA: true})
	complete := mustLoad(t, ca, testpki.CRLOptions{})
	for _, tc := range []struct {
		name string
		crl  *CRL
		cert *x509.Certificate
		want bool
	}{
		{"shard 1, certificate of shard 1", shard1, part1, true},
		{"shard 1, certificate of shard 2", shard1, part2, false},
		{"shard 1, certificate naming both", shard1, both, true},
		{"shard 1, certificate without distribution points", shard1, none, false},
		{"shard 1, distribution point with a CRL issuer", shard1, indirect, false},
		{"only user certificates, leaf", users, part1, true},
		{"only user certificates, CA", users, subCA.Cert, false},
		{"only CA certificates, leaf", cas, part1, false},
		{"only CA certificates, CA", cas, subCA.Cert, true},
		{"complete CRL", complete, part2, true},
	} {
		if got := tc.crl.Covers(tc.cert); got != tc.want {
			t.Errorf("%s: Covers = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Check uses it: shard 1 does not clear a certificate of shard 2.
	if err := (Policy{LeafOnly: true}).Check([]*x509.Certificate{part2, ca.Cert}, time.Now(), finder(shard1)); !errors.Is(err, ErrNoCRL) {
		t.Fatalf("a shard cleared a certificate outside it: %v", err)
	}
}

// TestLoadSet: Node's crl option's input (DER, PEM with several CRLs)
// verified against the CAs; a CRL of no CA given is an error.
func TestLoadSet(t *testing.T) {
	p := newPKI(t)
	interCRL := p.inter.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{p.leaf.Cert.SerialNumber}})
	rootCRL := p.root.CRL(t, testpki.CRLOptions{})
	cas := []*x509.Certificate{p.root.Cert, p.inter.Cert}
	s, err := LoadSet([][]byte{append(testpki.CRLPEM(interCRL), testpki.CRLPEM(rootCRL)...)}, cas)
	if err != nil || s.Len() != 2 {
		t.Fatalf("%v", err)
	}
	if err := (Policy{}).Check(p.chain, time.Now(), s.Find); !errors.Is(err, ErrRevoked) {
		t.Fatalf("%v", err)
	}
	stranger := testpki.NewCA(t, "stranger")
	if _, err := LoadSet([][]byte{rootCRL, stranger.CRL(t, testpki.CRLOptions{})}, cas); !errors.Is(err, ErrNoIssuer) {
		t.Fatalf("a CRL of no CA given: %v", err)
	}
	if _, err := LoadSet([][]byte{[]byte("junk")}, cas); !errors.Is(err, ErrMalformed) {
		t.Fatalf("junk: %v", err)
	}
}
