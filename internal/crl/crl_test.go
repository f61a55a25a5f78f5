package crl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

func serialOf(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	s, ok := CertificateSerial(cert)
	if !ok {
		t.Fatal("no serial")
	}
	return s
}

// TestParseAgreesWithX509: issuer, times, number and every serial are
// what crypto/x509 reads, and lookups find exactly the serials listed.
func TestParseAgreesWithX509(t *testing.T) {
	ca := testpki.NewCA(t, "parse CA")
	var revoked []*big.Int
	for i := range 300 {
		revoked = append(revoked, new(big.Int).Lsh(big.NewInt(int64(i+1)), uint(i%130)))
	}
	revoked = append(revoked, big.NewInt(0x80), big.NewInt(0xff00)) // need a leading zero octet
	der := ca.CRL(t, testpki.CRLOptions{Revoked: revoked, Number: big.NewInt(42)})
	c, err := Load(der, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.RawIssuer, rl.RawIssuer) || !c.ThisUpdate.Equal(rl.ThisUpdate) || !c.NextUpdate.Equal(rl.NextUpdate) ||
		c.Number.Cmp(rl.Number) != 0 || c.Len() != len(rl.RevokedCertificateEntries) || !bytes.Equal(c.AuthorityKeyID, rl.AuthorityKeyId) {
		t.Fatalf("parse differs from crypto/x509: %+v", c)
	}
	if c.Issuer != ca.Cert || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatal("issuer or algorithm not recorded")
	}
	listed := map[string]bool{}
	for _, e := range rl.RevokedCertificateEntries {
		listed[e.SerialNumber.String()] = true
	}
	for _, e := range rl.RevokedCertificateEntries {
		if !c.Revoked(intContent(e.SerialNumber)) {
			t.Fatalf("serial %x not found", e.SerialNumber)
		}
		if miss := new(big.Int).Add(e.SerialNumber, big.NewInt(1<<40)); !listed[miss.String()] && c.Revoked(intContent(miss)) {
			t.Fatalf("serial %x found", miss)
		}
	}
	n := 0
	c.idx.all(c.Raw, func([]byte, bool) bool { n++; return true })
	if n != len(listed) {
		t.Fatalf("index holds %d serials, want %d", n, len(listed))
	}
}

// intContent is a positive big.Int's DER INTEGER content octets.
func intContent(n *big.Int) []byte {
	b, _ := asn1.Marshal(n)
	return b[2:] // short lengths only in these tests
}

// TestIndexProperty checks the index against a map on many random
// serials of every length, duplicates and removeFromCRL listings included.
func TestIndexProperty(t *testing.T) {
	ca := testpki.NewCA(t, "index CA")
	want := map[string]bool{} // serial → revoked
	var entries []crltest.Entry
	var probes [][]byte
	for i := range 5000 {
		n := 1 + i%40
		s := make([]byte, n)
		rand.Read(s)
		s[0] = s[0]&0x7f | 0x01
		reason := 0
		if i%7 == 0 {
			reason = 8 // removeFromCRL
		}
		entries = append(entries, crltest.Entry{Serial: s, Reason: reason})
		want[string(s)] = want[string(s)] || reason != 8
		if i%50 == 0 { // listed twice, the second time without removeFromCRL
			entries = append(entries, crltest.Entry{Serial: s})
			want[string(s)] = true
		}
		absent := append([]byte(nil), s...)
		absent = append(absent, 0x5a)
		probes = append(probes, s, absent)
	}
	c, err := Load(crltest.Build(t, crltest.Spec{Issuer: ca, Entries: entries, Number: big.NewInt(1)}), ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != len(entries) {
		t.Fatalf("Len %d, want %d", c.Len(), len(entries))
	}
	for _, p := range probes {
		if got := c.Revoked(p); got != want[string(p)] {
			t.Fatalf("Revoked(%x) = %v, want %v", p, got, want[string(p)])
		}
	}
}

func TestLoadRefusesBadSignatures(t *testing.T) {
	ca := testpki.NewCA(t, "sig CA")
	other := testpki.NewCA(t, "sig CA") // same name, another key
	noSign := testpki.NewCAWith(t, "no cRLSign CA", testpki.CAOptions{KeyUsage: x509.KeyUsageCertSign})
	forged := ca.CRL(t, testpki.CRLOptions{SignWith: other.Key})
	if _, err := Load(forged, ca.Cert); !errors.Is(err, ErrSignature) || Code(err) != "CRL_SIGNATURE_FAILURE" {
		t.Fatalf("forged CRL: %v", err)
	}
	// The right issuer among several of that name is found.
	if c, err := Load(forged, ca.Cert, other.Cert); err != nil || c.Issuer != other.Cert {
		t.Fatalf("CRL of the second issuer: %v", err)
	}
	if _, err := Load(noSign.CRL(t, testpki.CRLOptions{}), noSign.Cert); !errors.Is(err, ErrSignature) {
		t.Fatalf("issuer without cRLSign: %v", err)
	}
	if _, err := Load(ca.CRL(t, testpki.CRLOptions{}), noSign.Cert); !errors.Is(err, ErrNoIssuer) {
		t.Fatalf("no issuer of that name: %v", err)
	}
	// A bit flipped in the signed part.
	der := ca.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{big.NewInt(77)}})
	c, _ := Parse(der)
	flipped := bytes.Clone(der)
	i := bytes.Index(flipped, c.RawIssuer) + len(c.RawIssuer) - 1
	flipped[i] ^= 1
	if _, err := Load(flipped, ca.Cert); err == nil {
		t.Fatal("tampered CRL accepted")
	}
}

func TestSignatureAlgorithms(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		key crypto.Signer
		alg x509.SignatureAlgorithm
	}{
		{rsaKey, x509.SHA256WithRSA}, {rsaKey, x509.SHA384WithRSA}, {rsaKey, x509.SHA512WithRSA},
		{rsaKey, x509.SHA256WithRSAPSS}, {rsaKey, x509.SHA384WithRSAPSS}, {rsaKey, x509.SHA512WithRSAPSS},
		{p384, x509.ECDSAWithSHA384}, {p384, x509.ECDSAWithSHA512}, {edKey, x509.PureEd25519},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alg CA"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
				BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
			cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, tc.key.Public(), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := x509.ParseCertificate(cder)
			der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
				ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), SignatureAlgorithm: tc.alg,
				RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: time.Now()}}}, cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Load(der, cert)
			if err != nil {
				t.Fatal(err)
			}
			if c.SignatureAlgorithm != tc.alg || !c.Revoked([]byte{5}) {
				t.Fatalf("algorithm %v", c.SignatureAlgorithm)
			}
		})
	}
}

func TestPolicyUsable(t *testing.T) {
	ca := testpki.NewCA(t, "time CA")
	now := time.Now().Truncate(time.Second)
	load := func(s crltest.Spec) *CRL {
		s.Issuer = ca
		c, err := Load(crltest.Build(t, s), ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	future := load(crltest.Spec{ThisUpdate: now.Add(10 * time.Minute), NextUpdate: now.Add(time.Hour)})
	soon := load(crltest.Spec{ThisUpdate: now.Add(2 * time.Minute), NextUpdate: now.Add(time.Hour)})
	expired := load(crltest.Spec{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Minute)})
	never := load(crltest.Spec{ThisUpdate: now.Add(-time.Hour), NoNextUpdate: true})
	p := Policy{Skew: 5 * time.Minute}
	if err := p.Usable(future, now); !errors.Is(err, ErrNotYetValid) || Code(err) != "CRL_NOT_YET_VALID" {
		t.Fatalf("thisUpdate 10 min ahead: %v", err)
	}
	if err := p.Usable(soon, now); err != nil {
		t.Fatalf("thisUpdate within the skew: %v", err)
	}
	if err := (Policy{}).Usable(soon, now); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("no skew: %v", err)
	}
	if err := p.Usable(expired, now); !errors.Is(err, ErrExpired) || Code(err) != "CRL_HAS_EXPIRED" {
		t.Fatalf("past nextUpdate: %v", err)
	}
	if err := (Policy{Grace: 2 * time.Minute}).Usable(expired, now); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	if err := p.Usable(never, now.AddDate(10, 0, 0)); err != nil || !never.NextUpdate.IsZero() {
		t.Fatalf("no nextUpdate: %v", err)
	}
}

var (
	oidUnknown     = asn1.ObjectIdentifier{1, 2, 3, 4, 5}
	oidCertIssuerX = asn1.ObjectIdentifier{2, 5, 29, 29}
	oidDeltaX      = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestX   = asn1.ObjectIdentifier{2, 5, 29, 46}
)

// TestRefusals: what RFC 5280 forbids a relying party to use, or this
// package does not support, is refused with the sentinel that says so.
func TestRefusals(t *testing.T) {
	ca := testpki.NewCA(t, "refusal CA")
	null := []byte{0x05, 0x00}
	one := []byte{0x02, 0x01, 0x01}
	for _, tc := range []struct {
		name string
		spec crltest.Spec
		want error
	}{
		{"unknown critical CRL extension", crltest.Spec{Extensions: []crltest.Ext{{ID: oidUnknown, Critical: true, Value: null}}}, ErrUnsupported},
		{"unknown critical entry extension", crltest.Spec{Entries: []crltest.Entry{{Serial: []byte{1}, Extensions: []crltest.Ext{{ID: oidUnknown, Critical: true, Value: null}}}}}, ErrUnsupported},
		{"entry naming another issuer (indirect)", crltest.Spec{Entries: []crltest.Entry{{Serial: []byte{1}, Extensions: []crltest.Ext{{ID: oidCertIssuerX, Critical: true, Value: []byte{0x30, 0x00}}}}}}, ErrUnsupported},
		{"delta CRL", crltest.Spec{Number: big.NewInt(2), Extensions: []crltest.Ext{{ID: oidDeltaX, Critical: true, Value: one}}}, ErrUnsupported},
		{"indirect CRL", crltest.Spec{Extensions: []crltest.Ext{crltest.IDP{Indirect: true}.Ext()}}, ErrUnsupported},
		{"partitioned by reason", crltest.Spec{Extensions: []crltest.Ext{crltest.IDP{OnlySomeReasons: true}.Ext()}}, ErrUnsupported},
		{"attribute certificates", crltest.Spec{Extensions: []crltest.Ext{crltest.IDP{Attr: true}.Ext()}}, ErrUnsupported},
		{"only user and only CA", crltest.Spec{Extensions: []crltest.Ext{crltest.IDP{OnlyUser: true, OnlyCA: true}.Ext()}}, ErrMalformed},
		{"duplicate extension", crltest.Spec{Number: big.NewInt(1), Extensions: []crltest.Ext{{ID: asn1.ObjectIdentifier{2, 5, 29, 20}, Value: one}}}, ErrMalformed},
		{"non-minimal serial", crltest.Spec{Entries: []crltest.Entry{{Serial: []byte{0, 1}}}}, ErrMalformed},
		{"empty serial", crltest.Spec{Entries: []crltest.Entry{{Serial: []byte{}}}}, ErrMalformed},
		{"serial of 256 bytes", crltest.Spec{Entries: []crltest.Entry{{Serial: append([]byte{1}, make([]byte, 255)...)}}}, ErrUnsupported},
		{"extensions in a v1 CRL", crltest.Spec{V1: true, Number: big.NewInt(1)}, ErrMalformed},
		{"entry extensions in a v1 CRL", crltest.Spec{V1: true, Entries: []crltest.Entry{{Serial: []byte{1}, Reason: 1}}}, ErrMalformed},
		{"malformed reasonCode", crltest.Spec{Entries: []crltest.Entry{{Serial: []byte{1}, Extensions: []crltest.Ext{{ID: asn1.ObjectIdentifier{2, 5, 29, 21}, Value: one}}}}}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Issuer = ca
			_, err := Load(crltest.Build(t, tc.spec), ca.Cert)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Known, or unknown but not critical: accepted.
	for name, spec := range map[string]crltest.Spec{
		"unknown non-critical extensions": {Extensions: []crltest.Ext{{ID: oidUnknown, Value: null}},
			Entries: []crltest.Entry{{Serial: []byte{1}, Extensions: []crltest.Ext{{ID: oidUnknown, Value: null}}}}},
		"freshestCRL (used as the complete CRL it is)":  {Extensions: []crltest.Ext{{ID: oidFreshestX, Value: []byte{0x30, 0x00}}}},
		"v1 CRL (openssl ca -gencrl without crlnumber)": {V1: true, Entries: []crltest.Entry{{Serial: []byte{1}}}},
		"empty revokedCertificates":                     {EmptyList: true},
		"GeneralizedTime after 2049":                    {NextUpdate: time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		spec.Issuer = ca
		c, err := Load(crltest.Build(t, spec), ca.Cert)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(spec.Entries) > 0 && !c.Revoked(spec.Entries[0].Serial) {
			t.Errorf("%s: entry not indexed", name)
		}
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x00}, []byte("garbage"), append(ca.CRL(t, testpki.CRLOptions{}), 0)} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.8x…): %v", bad, err)
		}
	}
}

func TestReasons(t *testing.T) {
	ca := testpki.NewCA(t, "reason CA")
	c, err := Load(crltest.Build(t, crltest.Spec{Issuer: ca, Entries: []crltest.Entry{
		{Serial: []byte{1}, Reason: 8}, // removeFromCRL: not a revocation (OpenSSL)
		{Serial: []byte{2}, Reason: 6}, // certificateHold: revoked
		{Serial: []byte{3}, Reason: crltest.ReasonUnspecified},
		{Serial: []byte{4}, Reason: 1},
	}}), ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[byte]bool{1: false, 2: true, 3: true, 4: true, 5: false} {
		if got := c.Revoked([]byte{s}); got != want {
			t.Errorf("serial %d: revoked %v, want %v", s, got, want)
		}
	}
}

func TestCertificateSerial(t *testing.T) {
	ca := testpki.NewCA(t, "serial CA")
	for _, n := range []*big.Int{big.NewInt(1), big.NewInt(0x7f), big.NewInt(0x80), new(big.Int).Lsh(big.NewInt(1), 159)} {
		leaf := ca.Issue(t, testpki.LeafOptions{Serial: n})
		if got := serialOf(t, leaf.Cert); !bytes.Equal(got, intContent(n)) {
			t.Errorf("serial %x: content %x", n, got)
		}
	}
}
