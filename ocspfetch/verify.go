package ocspfetch

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // CertID hashes
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// certID identifies a certificate to a responder (RFC 6960 4.1.1). The
// cache is keyed by it, so a renewed certificate (new serial) never gets its
// predecessor's staple.
type certID struct {
	hash      crypto.Hash
	nameHash  []byte
	keyHash   []byte
	serial    *big.Int
	issuerKey []byte // subjectPublicKey bits, to recompute keyHash in another hash
	issuerDN  []byte // RawSubject, to recompute nameHash
}

func newCertID(h crypto.Hash, cert, issuer *x509.Certificate) (certID, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return certID{}, newErr(ErrNoIssuer, "issuer public key", err)
	}
	id := certID{hash: h, serial: cert.SerialNumber, issuerKey: spki.PublicKey.RightAlign(), issuerDN: issuer.RawSubject}
	id.nameHash, id.keyHash = id.hashes(h)
	return id, nil
}

func (id certID) hashes(h crypto.Hash) (name, key []byte) {
	hn := h.New()
	hn.Write(id.issuerDN)
	hk := h.New()
	hk.Write(id.issuerKey)
	return hn.Sum(nil), hk.Sum(nil)
}

// key is the Store key: hash name, issuer name hash, issuer key hash and
// serial, in hex.
func (id certID) key() string {
	name := strings.ToLower(strings.ReplaceAll(id.hash.String(), "-", ""))
	return name + "-" + hex.EncodeToString(id.nameHash) + "-" + hex.EncodeToString(id.keyHash) + "-" + hex.EncodeToString(id.serial.Bytes())
}

// The ASN.1 of a response, only as deep as x/crypto/ocsp does not expose:
// the CertID of each single response.
type rawResponse struct {
	Status   asn1.Enumerated
	Response struct {
		Type  asn1.ObjectIdentifier
		Bytes []byte
	} `asn1:"explicit,tag:0,optional"`
}

type rawBasic struct {
	TBS struct {
		Raw         asn1.RawContent
		Version     int `asn1:"optional,explicit,default:0,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []rawSingle
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type rawSingle struct {
	CertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		Serial        *big.Int
	}
	CertStatus asn1.RawValue
	ThisUpdate time.Time        `asn1:"generalized"`
	NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
	Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

var hashOIDs = map[string]crypto.Hash{
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// matchCertID checks that the first single response about id's serial (the
// one ocsp.ParseResponseForCert picks) also names id's issuer, by name hash
// and key hash, in whatever hash algorithm the responder chose.
func matchCertID(der []byte, id certID) error {
	var r rawResponse
	if _, err := asn1.Unmarshal(der, &r); err != nil {
		return newErr(ErrMalformed, "", err)
	}
	var b rawBasic
	if _, err := asn1.Unmarshal(r.Response.Bytes, &b); err != nil {
		return newErr(ErrMalformed, "basic response", err)
	}
	for _, s := range b.TBS.Responses {
		if s.CertID.Serial == nil || s.CertID.Serial.Cmp(id.serial) != 0 {
			continue
		}
		h, ok := hashOIDs[s.CertID.HashAlgorithm.Algorithm.String()]
		if !ok {
			return newErr(ErrMalformed, "unsupported CertID hash "+s.CertID.HashAlgorithm.Algorithm.String(), nil)
		}
		name, key := id.hashes(h)
		if !bytes.Equal(name, s.CertID.NameHash) || !bytes.Equal(key, s.CertID.KeyHash) {
			return newErr(ErrWrongCertificate, "issuer hashes differ (same serial, another issuer)", nil)
		}
		return nil
	}
	return newErr(ErrWrongCertificate, "no answer for serial "+strings.ToUpper(id.serial.Text(16)), nil)
}

// verify parses der and accepts it only if it is a successful response
// about exactly cert (serial and issuer hashes), signed by issuer or by a
// delegate issuer signed that carries id-kp-OCSPSigning and is valid at now,
// with ThisUpdate ≤ now+skew and now < NextUpdate (effective). It returns
// the response and its effective NextUpdate. A verified Revoked or Unknown
// answer is returned together with ErrRevoked or ErrUnknownStatus.
func verify(der []byte, cert, issuer *x509.Certificate, id certID, now time.Time, skew time.Duration) (*ocsp.Response, time.Time, error) {
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		var re ocsp.ResponseError
		var pe ocsp.ParseError
		switch {
		case errors.As(err, &re):
			return nil, time.Time{}, newErr(ErrResponderStatus, "", err)
		case errors.As(err, &pe) && strings.Contains(string(pe), "no response matching"):
			return nil, time.Time{}, newErr(ErrWrongCertificate, "", err)
		case errors.As(err, &pe) && strings.Contains(string(pe), "signature"):
			// x/crypto checks the response against the certificate it
			// embeds before we see it.
			return nil, time.Time{}, newErr(ErrBadSignature, "", err)
		}
		return nil, time.Time{}, newErr(ErrMalformed, "", err)
	}
	if err := matchCertID(der, id); err != nil {
		return nil, time.Time{}, err
	}
	if err := checkSigner(resp, issuer, now); err != nil {
		return nil, time.Time{}, err
	}
	next := resp.NextUpdate
	if next.IsZero() {
		next = resp.ThisUpdate.Add(NoNextUpdateLifetime)
	}
	switch {
	case resp.ThisUpdate.After(now.Add(skew)):
		return nil, time.Time{}, newErr(ErrNotYetValid, "thisUpdate "+resp.ThisUpdate.UTC().Format(time.RFC3339), nil)
	case !next.After(resp.ThisUpdate):
		return nil, time.Time{}, newErr(ErrMalformed, "nextUpdate not after thisUpdate", nil)
	case !now.Before(next):
		return nil, time.Time{}, newErr(ErrExpired, "nextUpdate "+next.UTC().Format(time.RFC3339), nil)
	}
	switch resp.Status {
	case ocsp.Good:
		return resp, next, nil
	case ocsp.Revoked:
		return resp, next, newErr(ErrRevoked, "at "+resp.RevokedAt.UTC().Format(time.RFC3339), nil)
	default:
		return resp, next, ErrUnknownStatus
	}
}

// checkSigner enforces what x/crypto/ocsp leaves out: who may sign.
func checkSigner(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := resp.Certificate
	if signer == nil || bytes.Equal(signer.Raw, issuer.Raw) {
		// Signed by the CA itself (some responders, openssl among them,
		// embed the CA certificate).
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return newErr(ErrBadSignature, "not signed by the issuer", err)
		}
		return nil
	}
	// A delegated responder (RFC 6960 4.2.2.2): issued by the CA, with the
	// OCSPSigning EKU, and valid now. x/crypto already checked that it
	// signed the response.
	if err := signer.CheckSignatureFrom(issuer); err != nil {
		return newErr(ErrBadSigner, "delegate not issued by the certificate's issuer", err)
	}
	hasEKU := false
	for _, u := range signer.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			hasEKU = true
		}
	}
	if !hasEKU {
		return newErr(ErrBadSigner, "delegate lacks id-kp-OCSPSigning", nil)
	}
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return newErr(ErrBadSigner, "delegate certificate not valid now", nil)
	}
	if err := resp.CheckSignatureFrom(signer); err != nil {
		return newErr(ErrBadSignature, "", err)
	}
	return nil
}
