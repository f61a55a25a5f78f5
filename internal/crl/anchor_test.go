package crl

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestCheckAnchors: a chain that crypto/x509 ends at an intermediate of
// its roots is checked on up to the root, as Node builds it (the
// observations of TestNodeDifferential's anchor rows): the intermediate
// against the root's CRL, the root against its own; with the way up not
// known, the intermediate fails with UNABLE_TO_GET_CRL, as Node refuses a
// chain that does not reach a self-signed root. LeafOnly, a chain that
// ends at a self-issued root and CheckUnverified are as before.
func TestCheckAnchors(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	short := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	interEmpty := mustLoad(t, p.inter, testpki.CRLOptions{})
	interRevLeaf := mustLoad(t, p.inter, testpki.CRLOptions{Revoked: []*big.Int{p.leaf.Cert.SerialNumber}})
	rootEmpty := mustLoad(t, p.root, testpki.CRLOptions{})
	rootRevInter := mustLoad(t, p.root, testpki.CRLOptions{Revoked: []*big.Int{p.inter.Cert.SerialNumber}})
	both := NewAnchors([]*x509.Certificate{p.root.Cert, p.inter.Cert})
	rootOnly := NewAnchors([]*x509.Certificate{p.root.Cert}) // the intermediate's way up found when asked
	interOnly := NewAnchors([]*x509.Certificate{p.inter.Cert})
	for _, tc := range []struct {
		name    string
		policy  Policy
		chain   []*x509.Certificate
		crls    []*CRL
		code    string
		depth   int
		also    error
		unknown bool // the failure is that of an anchor whose issuer is not known
	}{
		{"way up known, root's CRL lists the intermediate", Policy{Anchors: both}, short, []*CRL{interEmpty, rootRevInter}, "CERT_REVOKED", 1, nil, false},
		{"way up found when asked, root's CRL lists the intermediate", Policy{Anchors: rootOnly}, short, []*CRL{interEmpty, rootRevInter}, "CERT_REVOKED", 1, nil, false},
		{"way up known, CRLs clean", Policy{Anchors: both}, short, []*CRL{interEmpty, rootEmpty}, "", 0, nil, false},
		{"way up known, the root's CRL missing", Policy{Anchors: both}, short, []*CRL{interEmpty}, "UNABLE_TO_GET_CRL", 2, nil, false},
		{"way up known, leaf and intermediate revoked", Policy{Anchors: both}, short, []*CRL{interRevLeaf, rootRevInter}, "CERT_REVOKED", 1, nil, false},
		{"no Anchors", Policy{}, short, []*CRL{interEmpty, rootEmpty}, "UNABLE_TO_GET_CRL", 1, nil, true},
		{"Anchors without the root", Policy{Anchors: interOnly}, short, []*CRL{interEmpty, rootEmpty}, "UNABLE_TO_GET_CRL", 1, nil, true},
		{"no Anchors, the leaf revoked too", Policy{}, short, []*CRL{interRevLeaf}, "UNABLE_TO_GET_CRL", 1, ErrRevoked, true},
		{"LeafOnly: the anchor is not checked", Policy{LeafOnly: true}, short, []*CRL{interEmpty}, "", 0, nil, false},
		{"LeafOnly, revoked leaf", Policy{LeafOnly: true}, short, []*CRL{interRevLeaf}, "CERT_REVOKED", 0, nil, false},
		{"LeafOnly, a leaf that is its own anchor, its issuer known", Policy{LeafOnly: true, Anchors: both}, short[:1], []*CRL{interRevLeaf}, "CERT_REVOKED", 0, nil, false},
		{"LeafOnly, a leaf that is its own anchor, its issuer not known", Policy{LeafOnly: true}, short[:1], []*CRL{interEmpty}, "UNABLE_TO_GET_CRL", 0, nil, true},
		{"self-issued root, no Anchors", Policy{}, p.chain, []*CRL{interEmpty, rootRevInter}, "CERT_REVOKED", 1, nil, false},
		{"self-issued root, Anchors", Policy{Anchors: both}, p.chain, []*CRL{interEmpty, rootEmpty}, "", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.chain, now, finder(tc.crls...))
			if Code(err) != tc.code {
				t.Fatalf("code %q, want %q (%v)", Code(err), tc.code, err)
			}
			if err == nil {
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Depth != tc.depth {
				t.Fatalf("%v: want depth %d", err, tc.depth)
			}
			if want := slices.Concat(tc.chain, []*x509.Certificate{p.root.Cert})[tc.depth]; !e.Cert.Equal(want) {
				t.Fatalf("%v: want %s", err, want.Subject)
			}
			if errors.Is(err, ErrUnknownAnchor) != tc.unknown || tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("%v: ErrUnknownAnchor %v, also %v", err, tc.unknown, tc.also)
			}
		})
	}
	// The chain OpenSSL builds for a certificate that failed to verify
	// stops where no issuer was found: that certificate is not checked.
	if err := (Policy{}).CheckUnverified(short, now, finder(interEmpty)); err != nil {
		t.Fatalf("CheckUnverified: %v", err)
	}
	if err := (Policy{}).CheckUnverified(short, now, finder(interRevLeaf)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("CheckUnverified, revoked leaf: %v", err)
	}
	// Each gives Check's certificates and issuers: the way up included,
	// an anchor whose issuer is not known left out.
	var got []string
	each := func(cert, issuer *x509.Certificate) {
		got = append(got, cert.Subject.CommonName+"<"+issuer.Subject.CommonName)
	}
	Policy{Anchors: both}.Each(short, each)
	Policy{}.Each(short, each)
	Policy{LeafOnly: true, Anchors: both}.Each(short, each)
	want := []string{"localhost<check inter", "check inter<check root", "check root<check root", "localhost<check inter", "localhost<check inter"}
	if len(got) != len(want) {
		t.Fatalf("Each: %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Each: %q, want %q", got, want)
		}
	}
}

// TestCheckAnchorsAllocatesNothing: a passing check through the way up
// allocates nothing, once the way up of an anchor outside the CA
// certificates has been found; CheckChains tries a chain that reaches the
// root before one cut short at an anchor whose issuer is not known, so
// that one failing costs a passing handshake nothing.
func TestCheckAnchorsAllocatesNothing(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	short := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	crls := map[string][]*CRL{
		string(p.inter.Cert.RawSubject): {mustLoad(t, p.inter, testpki.CRLOptions{})},
		string(p.root.Cert.RawSubject):  {mustLoad(t, p.root, testpki.CRLOptions{})},
	}
	find := func(_, issuer *x509.Certificate) ([]*CRL, error) { return crls[string(issuer.RawSubject)], nil }
	for _, tc := range []struct {
		name   string
		policy Policy
		chains [][]*x509.Certificate
	}{
		{"way up known", Policy{Anchors: NewAnchors([]*x509.Certificate{p.root.Cert, p.inter.Cert})}, [][]*x509.Certificate{short}},
		{"way up found when asked", Policy{Anchors: NewAnchors([]*x509.Certificate{p.root.Cert})}, [][]*x509.Certificate{short}},
		{"the chain to the root after one cut short", Policy{}, [][]*x509.Certificate{short, p.chain}},
	} {
		if err := tc.policy.CheckChains(tc.chains, now, find); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := testing.AllocsPerRun(100, func() {
			if tc.policy.CheckChains(tc.chains, now, find) != nil {
				t.Fatal("check failed")
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per check", tc.name, n)
		}
	}
}

// TestAnchorsBounded: a loop of cross-certificates (each CA certified by
// the other, neither self-issued) has no way up, and is not walked
// forever; a chain of Anchors is nil-safe.
func TestAnchorsBounded(t *testing.T) {
	a, b := testpki.NewCA(t, "loop A"), testpki.NewCA(t, "loop B")
	cross := func(subject, issuer *testpki.CA) *x509.Certificate {
		tmpl := *subject.Cert
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, issuer.Cert, &subject.Key.PublicKey, issuer.Key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aByB, bByA := cross(a, b), cross(b, a)
	anchors := NewAnchors([]*x509.Certificate{aByB, bByA})
	if up := anchors.Up(aByB); up != nil {
		t.Fatalf("a way up through a loop: %d certificates", len(up))
	}
	// With B's self-signed root among them, A's cross-certificate leads there.
	anchors = NewAnchors([]*x509.Certificate{aByB, bByA, b.Cert})
	if up := anchors.Up(aByB); len(up) != 1 || !up[0].Equal(b.Cert) {
		t.Fatalf("way up of A by B: %v", up)
	}
	var none *Anchors
	if none.Up(aByB) != nil {
		t.Fatal("nil Anchors")
	}
}

// BenchmarkCheckAnchor is Check of a passing chain that crypto/x509 ended
// at an intermediate, walked up to the root through Anchors
// ("intermediate"), against the same chain built to the root ("root"):
// the ratio of the two is the cost of the way up.
func BenchmarkCheckAnchor(b *testing.B) {
	root := testpki.NewCA(b, "bench root")
	inter := root.Intermediate(b, "bench inter")
	leaf := inter.Issue(b, testpki.LeafOptions{})
	crls := map[string][]*CRL{}
	for _, ca := range []*testpki.CA{root, inter} {
		c, err := Load(ca.CRL(b, testpki.CRLOptions{}), ca.Cert)
		if err != nil {
			b.Fatal(err)
		}
		crls[string(ca.Cert.RawSubject)] = []*CRL{c}
	}
	find := func(_, issuer *x509.Certificate) ([]*CRL, error) { return crls[string(issuer.RawSubject)], nil }
	p := Policy{Anchors: NewAnchors([]*x509.Certificate{root.Cert, inter.Cert})}
	now := time.Now()
	for _, bc := range []struct {
		name  string
		chain []*x509.Certificate
	}{
		{"root", []*x509.Certificate{leaf.Cert, inter.Cert, root.Cert}},
		{"intermediate", []*x509.Certificate{leaf.Cert, inter.Cert}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			chains := [][]*x509.Certificate{bc.chain}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.CheckChains(chains, now, find); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
