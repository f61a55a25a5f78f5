package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// CAOptions configure NewCAWith and (*CA).IntermediateWith.
type CAOptions struct {
	// CRLDistributionPoints lists the CRL URLs put in the CA certificate's
	// CRL Distribution Points extension (where its issuer's CRL is).
	CRLDistributionPoints []string
	// KeyUsage replaces the default certSign | cRLSign | digitalSignature
	// (a CA without cRLSign, say).
	KeyUsage x509.KeyUsage
}

// NewCAWith is NewCA with options.
func NewCAWith(t T, name string, o CAOptions) *CA {
	t.Helper()
	return newCAWith(t, name, nil, o)
}

// IntermediateWith is Intermediate with options.
func (ca *CA) IntermediateWith(t T, name string, o CAOptions) *CA {
	t.Helper()
	return newCAWith(t, name, ca, o)
}

// CRLOptions configure (*CA).CRL. The zero value is an empty v2 CRL with
// CRL number 1, thisUpdate a minute ago and nextUpdate an hour later,
// signed by the CA.
type CRLOptions struct {
	// Revoked lists the serial numbers revoked (revocation time
	// ThisUpdate, no reason).
	Revoked []*big.Int
	// Entries are more revoked certificates, with whatever reason code or
	// extensions a test needs.
	Entries []x509.RevocationListEntry
	// Number is the CRL number; nil means 1.
	Number *big.Int
	// ThisUpdate defaults to a minute ago, NextUpdate to ThisUpdate + 1h.
	ThisUpdate, NextUpdate time.Time
	// Extensions are added to the CRL's extensions (an issuing
	// distribution point, a delta CRL indicator, a critical unknown one).
	Extensions []pkix.Extension
	// SignWith, when set, signs in the CA's name with another key: a
	// forged CRL (openssl ca refuses to make one).
	SignWith crypto.Signer
}

// CRL returns a DER CRL issued by ca following o. It is well formed;
// whether it is acceptable is for the verifier under test to decide.
func (ca *CA) CRL(t T, o CRLOptions) []byte {
	t.Helper()
	if o.ThisUpdate.IsZero() {
		o.ThisUpdate = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	}
	if o.NextUpdate.IsZero() {
		o.NextUpdate = o.ThisUpdate.Add(time.Hour)
	}
	if o.Number == nil {
		o.Number = big.NewInt(1)
	}
	entries := append([]x509.RevocationListEntry(nil), o.Entries...)
	for _, s := range o.Revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: o.ThisUpdate})
	}
	issuer, key := ca.Cert, crypto.Signer(ca.Key)
	if o.SignWith != nil || ca.Cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		// CreateRevocationList insists on cRLSign and on the issuer's
		// key; a test that wants either broken gets it.
		fake := *ca.Cert
		fake.KeyUsage |= x509.KeyUsageCRLSign
		issuer = &fake
		if o.SignWith != nil {
			key = o.SignWith
		}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    o.Number,
		ThisUpdate:                o.ThisUpdate,
		NextUpdate:                o.NextUpdate,
		RevokedCertificateEntries: entries,
		ExtraExtensions:           o.Extensions,
	}, issuer, key)
	if err != nil {
		t.Fatalf("testpki: creating CRL of %q: %v", ca.Name, err)
	}
	return der
}

// CRLPEM returns the PEM encoding ("X509 CRL") of der.
func CRLPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
