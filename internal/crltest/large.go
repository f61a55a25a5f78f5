package crltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// largeVersion names the shape of the CRLs Large makes: change it when
// that shape changes, so that a cached file of the old shape is not used.
const largeVersion = "v2"

// Large is a big CRL for benchmarks: its issuer, its DER, and the
// serials it revokes, reproducible by index.
type Large struct {
	CA  *testpki.CA
	DER []byte
	N   int
}

// LargeThisUpdate and LargeNextUpdate bound every Large CRL, so that a
// cached one stays valid for years.
var (
	LargeThisUpdate = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	LargeNextUpdate = time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
)

// LargeCRL returns a CRL of n entries issued by a CA whose key is the
// same in every run ("tlsemit large CRL CA"), signed with ECDSA P-256 and
// SHA-256, about 34 bytes an entry (14-byte serials, UTCTime revocation
// dates, a reasonCode on every sixteenth, as public CRLs have). It is
// made once and cached under the temporary directory
// (tlsemit-crl-cache), as a 1,000,000-entry CRL is 34 MB and takes
// seconds to make.
func LargeCRL(t testpki.T, n int) *Large {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "tlsemit-crl-cache")
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", largeVersion, n))
	ca := largeCA(t)
	if der, err := os.ReadFile(base + ".crl"); err == nil {
		sum, err := os.ReadFile(base + ".sha256")
		if h := sha256.Sum256(der); err == nil && string(sum) == string(h[:]) {
			return &Large{CA: ca, DER: der, N: n}
		}
	}
	der := buildLarge(t, ca, n)
	h := sha256.Sum256(der)
	if os.MkdirAll(dir, 0o700) == nil && writeFile(base+".crl", der) {
		writeFile(base+".sha256", h[:]) // written last: it vouches for the CRL
	}
	return &Large{CA: ca, DER: der, N: n}
}

// writeFile writes b to path through a temporary file renamed into
// place, so that a concurrent reader sees all of it or nothing.
func writeFile(path string, b []byte) bool {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return false
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
		return false
	}
	return true
}

// Serial returns the content octets of the i-th serial revoked (a
// positive INTEGER of 14 bytes, minimal).
func (l *Large) Serial(i int) []byte { return largeSerial(i) }

// Absent returns the content octets of a serial that the CRL does not
// revoke: Serial(i) with a first byte no revoked serial has.
func (l *Large) Absent(i int) []byte {
	s := largeSerial(i)
	s[0] = 0x40 // revoked serials' first bytes are in 0x01..0x3f
	return s
}

// SerialInt returns Serial(i) as a big.Int.
func (l *Large) SerialInt(i int) *big.Int { return new(big.Int).SetBytes(largeSerial(i)) }

func largeSerial(i int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(append([]byte("tlsemit large CRL serial"), b[:]...))
	s := h[:14:14]
	s[0] = (s[0] & 0x3f) | 0x01 // positive, minimal, never 0x40-marked
	return append([]byte(nil), s...)
}

// largeCA is the CA of every Large CRL: the same key in every run, so
// that a cached CRL verifies with a CA made now.
func largeCA(t testpki.T) *testpki.CA {
	t.Helper()
	seed := sha256.Sum256([]byte("tlsemit large CRL CA key"))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatalf("crltest: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlsemit large CRL CA", Organization: []string{"tlsemit test PKI"}},
		NotBefore:             LargeThisUpdate.AddDate(-1, 0, 0),
		NotAfter:              LargeNextUpdate,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("crltest: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("crltest: CA: %v", err)
	}
	return &testpki.CA{Name: tmpl.Subject.CommonName, Cert: cert, DER: der, Key: key}
}

var (
	oidCRLNumber  = []int{2, 5, 29, 20}
	oidReasonCode = []int{2, 5, 29, 21}
	oidAKID       = []int{2, 5, 29, 35}
	oidECDSA256   = []int{1, 2, 840, 10045, 4, 3, 2}
)

// buildLarge writes the CRL with cryptobyte (x509.CreateRevocationList
// takes much longer at this size) and signs it with ca's key.
func buildLarge(t testpki.T, ca *testpki.CA, n int) []byte {
	t.Helper()
	sigAlg := func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidECDSA256) })
	}
	revoked := LargeThisUpdate.Add(-time.Hour)
	tb := cryptobyte.NewBuilder(make([]byte, 0, 36*n+1024))
	tb.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // v2
		sigAlg(b)
		b.AddBytes(ca.Cert.RawSubject)
		b.AddASN1UTCTime(LargeThisUpdate)
		b.AddASN1UTCTime(LargeNextUpdate)
		if n > 0 {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range n {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(largeSerial(i)) })
						b.AddASN1UTCTime(revoked.Add(-time.Duration(i) * time.Second))
						if i%16 == 0 {
							b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddASN1ObjectIdentifier(oidReasonCode)
									b.AddASN1(casn1.OCTET_STRING, func(b *cryptobyte.Builder) {
										b.AddASN1Enum(int64(1 + i%5)) // keyCompromise … superseded
									})
								})
							})
						}
					})
				}
			})
		}
		b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidAKID)
					b.AddASN1(casn1.OCTET_STRING, func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(casn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ca.Cert.SubjectKeyId) })
						})
					})
				})
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidCRLNumber)
					b.AddASN1(casn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(n) + 1) })
				})
			})
		})
	})
	tbs, err := tb.Bytes()
	if err != nil {
		t.Fatalf("crltest: building CRL: %v", err)
	}
	sum := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, ca.Key, sum[:])
	if err != nil {
		t.Fatalf("crltest: signing CRL: %v", err)
	}
	out := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+256))
	out.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		sigAlg(b)
		b.AddASN1BitString(sig)
	})
	der, err := out.Bytes()
	if err != nil {
		t.Fatalf("crltest: building CRL: %v", err)
	}
	return der
}
