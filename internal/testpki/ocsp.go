package testpki

import (
	"crypto"
	"crypto/x509"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ResponseOptions configure (*CA).OCSPResponse. The zero value is a Good
// answer signed by the CA itself, produced a minute ago, valid for an hour.
type ResponseOptions struct {
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status int
	// ThisUpdate defaults to a minute ago.
	ThisUpdate time.Time
	// NextUpdate defaults to ThisUpdate + 1h unless NoNextUpdate is set.
	NextUpdate time.Time
	// NoNextUpdate omits nextUpdate, as openssl ocsp does without -nmin.
	NoNextUpdate bool
	// RevokedAt defaults to ThisUpdate for a Revoked answer.
	RevokedAt time.Time
	// Signer, when set, signs as a delegated responder and is included in
	// the response; nil means the CA signs with its own key.
	Signer *Leaf
	// IssuerHash is the CertID hash; zero means SHA-1.
	IssuerHash crypto.Hash
	// SerialOverride, when set, answers for this certificate instead of
	// cert (the "another certificate's response" fault).
	SerialOverride *x509.Certificate
}

// OCSPResponse returns a DER OCSP response about cert, issued by ca,
// following o. The response is well formed; whether it is acceptable is for
// the verifier under test to decide.
func (ca *CA) OCSPResponse(t T, cert *x509.Certificate, o ResponseOptions) []byte {
	t.Helper()
	if o.ThisUpdate.IsZero() {
		o.ThisUpdate = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	}
	if o.NextUpdate.IsZero() && !o.NoNextUpdate {
		o.NextUpdate = o.ThisUpdate.Add(time.Hour)
	}
	if o.NoNextUpdate {
		o.NextUpdate = time.Time{}
	}
	if o.Status == ocsp.Revoked && o.RevokedAt.IsZero() {
		o.RevokedAt = o.ThisUpdate
	}
	if o.IssuerHash == 0 {
		o.IssuerHash = crypto.SHA1
	}
	subject := cert
	if o.SerialOverride != nil {
		subject = o.SerialOverride
	}
	tmpl := ocsp.Response{
		Status:       o.Status,
		SerialNumber: subject.SerialNumber,
		ThisUpdate:   o.ThisUpdate,
		NextUpdate:   o.NextUpdate,
		RevokedAt:    o.RevokedAt,
		IssuerHash:   o.IssuerHash,
	}
	responder, key := ca.Cert, crypto.Signer(ca.Key)
	if o.Signer != nil {
		responder, key = o.Signer.Cert, o.Signer.Key
		tmpl.Certificate = o.Signer.Cert
	}
	der, err := ocsp.CreateResponse(ca.Cert, responder, tmpl, key)
	if err != nil {
		t.Fatalf("testpki: creating OCSP response: %v", err)
	}
	return der
}
