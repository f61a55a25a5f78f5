package crltest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Ext is a raw extension.
type Ext struct {
	ID       asn1.ObjectIdentifier
	Critical bool
	Value    []byte // the extnValue's content
}

// Entry is a raw revoked-certificate entry.
type Entry struct {
	// Serial is the content octets of the serial INTEGER, as given (a
	// non-minimal encoding too).
	Serial []byte
	// Reason is the reasonCode; 0 means none (use ReasonUnspecified for an
	// explicit unspecified).
	Reason int
	// Extensions are more entry extensions.
	Extensions []Ext
	// Date defaults to the CRL's thisUpdate.
	Date time.Time
}

// ReasonUnspecified asks Entry for an explicit reasonCode 0.
const ReasonUnspecified = -1

// Spec is a CRL for Build, every part under the test's control, which
// x509.CreateRevocationList would not allow (v1 CRLs, non-minimal
// serials, arbitrary critical extensions).
type Spec struct {
	// Issuer's name is the CRL's issuer and, without SignWith, its key
	// signs (ECDSA with SHA-256).
	Issuer *testpki.CA
	// SignWith signs instead: a forgery.
	SignWith crypto.Signer
	// V1 leaves the version out (and should come without extensions).
	V1 bool
	// ThisUpdate defaults to a minute ago; NextUpdate to an hour after it
	// unless NoNextUpdate.
	ThisUpdate, NextUpdate time.Time
	NoNextUpdate           bool
	// Number is the cRLNumber; nil leaves it out.
	Number *big.Int
	// Entries are the revoked certificates; EmptyList writes an empty
	// SEQUENCE when there are none.
	Entries   []Entry
	EmptyList bool
	// Extensions are CRL extensions besides the number.
	Extensions []Ext
}

var (
	oidReason = asn1.ObjectIdentifier{2, 5, 29, 21}
	ecdsa256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// Build returns the DER CRL s describes.
func Build(t testpki.T, s Spec) []byte {
	t.Helper()
	if s.ThisUpdate.IsZero() {
		s.ThisUpdate = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	}
	if s.NextUpdate.IsZero() && !s.NoNextUpdate {
		s.NextUpdate = s.ThisUpdate.Add(time.Hour)
	}
	exts := s.Extensions
	if s.Number != nil {
		num, _ := asn1.Marshal(s.Number)
		exts = append([]Ext{{ID: asn1.ObjectIdentifier{2, 5, 29, 20}, Value: num}}, exts...)
	}
	alg := func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(ecdsa256) })
	}
	var tb cryptobyte.Builder
	tb.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if !s.V1 {
			b.AddASN1Int64(1)
		}
		alg(b)
		b.AddBytes(s.Issuer.Cert.RawSubject)
		addTime(b, s.ThisUpdate)
		if !s.NoNextUpdate {
			addTime(b, s.NextUpdate)
		}
		if len(s.Entries) > 0 || s.EmptyList {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, e := range s.Entries {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(casn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(e.Serial) })
						d := e.Date
						if d.IsZero() {
							d = s.ThisUpdate
						}
						addTime(b, d)
						ee := e.Extensions
						if e.Reason != 0 {
							var v cryptobyte.Builder
							v.AddASN1Enum(int64(max(e.Reason, 0)))
							ee = append([]Ext{{ID: oidReason, Value: v.BytesOrPanic()}}, ee...)
						}
						if len(ee) > 0 {
							addExts(b, ee)
						}
					})
				}
			})
		}
		if len(exts) > 0 {
			b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { addExts(b, exts) })
		}
	})
	tbs, err := tb.Bytes()
	if err != nil {
		t.Fatalf("crltest: building CRL: %v", err)
	}
	signer := crypto.Signer(s.Issuer.Key)
	if s.SignWith != nil {
		signer = s.SignWith
	}
	sum := sha256.Sum256(tbs)
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("crltest: signing CRL: %v", err)
	}
	var out cryptobyte.Builder
	out.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		alg(b)
		b.AddASN1BitString(sig)
	})
	return out.BytesOrPanic()
}

// addTime writes t as RFC 5280 asks: UTCTime through 2049, then
// GeneralizedTime.
func addTime(b *cryptobyte.Builder, t time.Time) {
	if t.Year() < 2050 {
		b.AddASN1UTCTime(t.UTC())
	} else {
		b.AddASN1GeneralizedTime(t.UTC())
	}
}

func addExts(b *cryptobyte.Builder, exts []Ext) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(e.ID)
				if e.Critical {
					b.AddASN1Boolean(true)
				}
				b.AddASN1OctetString(e.Value)
			})
		}
	})
}

// IDP is an issuingDistributionPoint extension's content.
type IDP struct {
	// URIs are the fullName's distribution point URIs.
	URIs                             []string
	OnlyUser, OnlyCA, Indirect, Attr bool
	OnlySomeReasons                  bool
}

// Ext returns the extension, critical as RFC 5280 requires.
func (p IDP) Ext() Ext {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if len(p.URIs) > 0 {
			b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					for _, u := range p.URIs {
						b.AddASN1(casn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					}
				})
			})
		}
		flag := func(n uint8, v bool) {
			if v {
				b.AddASN1(casn1.Tag(n).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
			}
		}
		flag(1, p.OnlyUser)
		flag(2, p.OnlyCA)
		if p.OnlySomeReasons {
			b.AddASN1(casn1.Tag(3).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte{0x07, 0x80}) })
		}
		flag(4, p.Indirect)
		flag(5, p.Attr)
	})
	return Ext{ID: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: b.BytesOrPanic()}
}
