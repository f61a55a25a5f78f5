package crl

// FuzzParse compares the parser with crypto/x509.ParseRevocationList: on
// any input both accept, they agree on the issuer, the times, the number,
// the authority key identifier, the number of entries and the set of
// serials, and a lookup finds every serial x509 lists (unless only ever
// listed as removeFromCRL). The seeds in testdata/fuzz/FuzzParse were made
// by TestFuzzSeedsRegenerate (CRL_FUZZ_REGEN=1) from a fixed CA key, so
// they do not change from run to run.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := Parse(der)
		rl, xerr := x509.ParseRevocationList(der)
		if err != nil || xerr != nil {
			return
		}
		if !bytes.Equal(c.RawIssuer, rl.RawIssuer) {
			t.Fatalf("issuer %x, x509 %x", c.RawIssuer, rl.RawIssuer)
		}
		if !c.ThisUpdate.Equal(rl.ThisUpdate) || !c.NextUpdate.Equal(rl.NextUpdate) {
			t.Fatalf("times %v %v, x509 %v %v", c.ThisUpdate, c.NextUpdate, rl.ThisUpdate, rl.NextUpdate)
		}
		if (c.Number == nil) != (rl.Number == nil) || c.Number != nil && c.Number.Cmp(rl.Number) != 0 {
			t.Fatalf("number %v, x509 %v", c.Number, rl.Number)
		}
		if !bytes.Equal(c.AuthorityKeyID, rl.AuthorityKeyId) {
			t.Fatalf("authority key id %x, x509 %x", c.AuthorityKeyID, rl.AuthorityKeyId)
		}
		if c.Len() != len(rl.RevokedCertificateEntries) {
			t.Fatalf("%d entries, x509 %d", c.Len(), len(rl.RevokedCertificateEntries))
		}
		want := map[string]bool{} // serial → revoked by some listing
		for _, e := range rl.RevokedCertificateEntries {
			s := intBytes(t, e.SerialNumber)
			want[s] = want[s] || e.ReasonCode != reasonRemoveFromCRL
		}
		got := map[string]bool{}
		c.idx.all(c.Raw, func(s []byte, removed bool) bool {
			got[string(s)] = !removed
			return true
		})
		if len(got) != len(want) {
			t.Fatalf("%d distinct serials, x509 %d", len(got), len(want))
		}
		for s, revoked := range want {
			if r, ok := got[s]; !ok || r != revoked {
				t.Fatalf("serial %x: indexed %v revoked %v, x509 says revoked %v", s, ok, r, revoked)
			}
			if c.Revoked([]byte(s)) != revoked {
				t.Fatalf("lookup of %x disagrees", s)
			}
		}
	})
}

// intBytes is n's DER INTEGER content octets.
func intBytes(t *testing.T, n *big.Int) string {
	der, err := asn1.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	s := cryptobyte.String(der)
	var content cryptobyte.String
	if !s.ReadASN1(&content, casn1.INTEGER) {
		t.Fatal("marshal")
	}
	return string(content)
}

// TestFuzzSeedsRegenerate writes the seed corpus (CRL_FUZZ_REGEN=1): CRLs
// of every shape the parser handles, from a fixed key and clock.
func TestFuzzSeedsRegenerate(t *testing.T) {
	if os.Getenv("CRL_FUZZ_REGEN") != "1" {
		t.Skip("set CRL_FUZZ_REGEN=1 to rewrite testdata/fuzz/FuzzParse")
	}
	seed := sha256.Sum256([]byte("crl fuzz CA"))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crl fuzz CA"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(cder)
	ca := &testpki.CA{Name: "crl fuzz CA", Cert: cert, DER: cder, Key: key}
	spec := func(s crltest.Spec) crltest.Spec {
		s.Issuer, s.ThisUpdate = ca, now
		return s
	}
	seeds := map[string][]byte{
		"empty":   crltest.Build(t, spec(crltest.Spec{Number: big.NewInt(1)})),
		"entries": crltest.Build(t, spec(crltest.Spec{Number: big.NewInt(7), Entries: []crltest.Entry{{Serial: []byte{1}}, {Serial: []byte{0x00, 0x80}, Reason: 1}, {Serial: []byte{0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}}, {Serial: []byte{5}, Reason: 8}, {Serial: []byte{5}}, {Serial: []byte{0xff, 0x01}}}})),
		"idp":     crltest.Build(t, spec(crltest.Spec{Number: big.NewInt(2), Extensions: []crltest.Ext{crltest.IDP{URIs: []string{"http://crl.example/1.crl"}, OnlyUser: true}.Ext()}, Entries: []crltest.Entry{{Serial: []byte{9}}}})),
		"x509":    ca.CRL(t, testpki.CRLOptions{ThisUpdate: now, Number: big.NewInt(3), Revoked: []*big.Int{big.NewInt(1), big.NewInt(1 << 40)}}),
		"nonext":  crltest.Build(t, spec(crltest.Spec{NoNextUpdate: true, Number: big.NewInt(4), EmptyList: true})),
		"v1":      crltest.Build(t, spec(crltest.Spec{V1: true, Entries: []crltest.Entry{{Serial: []byte{3}}}})),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, der := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", der)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzSeedsBothAccept: the committed seeds reach the comparison (both
// parsers accept them), all but the v1 CRL, which crypto/x509 refuses.
func TestFuzzSeedsBothAccept(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if err != nil || len(files) < 6 {
		t.Fatalf("%d seeds: %v", len(files), err)
	}
	both := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var q string
		if _, err := fmt.Sscanf(string(bytes.TrimPrefix(b, []byte("go test fuzz v1\n[]byte("))), "%q", &q); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		_, err1 := Parse([]byte(q))
		_, err2 := x509.ParseRevocationList([]byte(q))
		if err1 == nil && err2 == nil {
			both++
		} else if filepath.Base(f) != "v1" {
			t.Errorf("%s: Parse %v, x509 %v", f, err1, err2)
		}
	}
	if both != len(files)-1 {
		t.Fatalf("%d of %d seeds accepted by both", both, len(files))
	}
}
