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
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
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

// responseParts is an OCSPResponse taken apart as far as this package
// needs (RFC 6960 4.2.1), each part of the BasicOCSPResponse kept as the
// bytes it came in, so that it can be put together again without touching
// what the signature covers.
type responseParts struct {
	tbs, sigAlg, sig []byte   // tbsResponseData, signatureAlgorithm, signature
	certs            [][]byte // the certs field, which the signature does not cover
}

var oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// tagExplicit0 is the [0] EXPLICIT of the response bytes and of the
// certs field.
var tagExplicit0 = casn1.Tag(0).Constructed().ContextSpecific()

// splitResponse takes der apart. A response whose status is not successful
// is reported as ErrResponderStatus, wrapping ocsp.ResponseError.
func splitResponse(der []byte) (*responseParts, error) {
	malformed := func(what string) error { return newErr(ErrMalformed, what, nil) }
	in := cryptobyte.String(der)
	var resp, rb, rbs, basicDER, basic cryptobyte.String
	var status int
	if !in.ReadASN1(&resp, casn1.SEQUENCE) || !in.Empty() || !resp.ReadASN1Enum(&status) {
		return nil, malformed("not an OCSPResponse")
	}
	if status != int(ocsp.Success) {
		return nil, newErr(ErrResponderStatus, "", ocsp.ResponseError{Status: ocsp.ResponseStatus(status)})
	}
	var typ asn1.ObjectIdentifier
	if !resp.ReadASN1(&rb, tagExplicit0) || !resp.Empty() || !rb.ReadASN1(&rbs, casn1.SEQUENCE) || !rb.Empty() ||
		!rbs.ReadASN1ObjectIdentifier(&typ) || !rbs.ReadASN1(&basicDER, casn1.OCTET_STRING) || !rbs.Empty() {
		return nil, malformed("no response bytes")
	}
	if !typ.Equal(oidOCSPBasic) {
		return nil, malformed("response type " + typ.String())
	}
	var p responseParts
	var tbs, alg, sig cryptobyte.String
	if !basicDER.ReadASN1(&basic, casn1.SEQUENCE) || !basicDER.Empty() || !basic.ReadASN1Element(&tbs, casn1.SEQUENCE) ||
		!basic.ReadASN1Element(&alg, casn1.SEQUENCE) || !basic.ReadASN1Element(&sig, casn1.BIT_STRING) {
		return nil, malformed("BasicOCSPResponse")
	}
	p.tbs, p.sigAlg, p.sig = tbs, alg, sig
	if basic.PeekASN1Tag(tagExplicit0) {
		var wrap, list cryptobyte.String
		if !basic.ReadASN1(&wrap, tagExplicit0) || !wrap.ReadASN1(&list, casn1.SEQUENCE) || !wrap.Empty() {
			return nil, malformed("certs")
		}
		for !list.Empty() {
			var c cryptobyte.String
			var tag casn1.Tag
			if !list.ReadAnyASN1Element(&c, &tag) {
				return nil, malformed("certs")
			}
			p.certs = append(p.certs, c)
		}
	}
	if !basic.Empty() {
		return nil, malformed("trailing data in BasicOCSPResponse")
	}
	return &p, nil
}

// encode puts the response together again with certs as its certs field
// (none: the field is left out).
func (p *responseParts) encode(certs ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(int64(ocsp.Success))
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidOCSPBasic)
				b.AddASN1(casn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddBytes(p.tbs)
						b.AddBytes(p.sigAlg)
						b.AddBytes(p.sig)
						if len(certs) > 0 {
							b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
								b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
									for _, c := range certs {
										b.AddBytes(c)
									}
								})
							})
						}
					})
				})
			})
		})
	})
	return b.BytesOrPanic() // only raw elements that parsed, re-framed
}

// The ASN.1 of tbsResponseData, as deep as x/crypto/ocsp does not expose:
// the CertID of each single response.
type rawTBS struct {
	Version     int `asn1:"optional,explicit,default:0,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []rawSingle
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
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
func matchCertID(tbs []byte, id certID) error {
	var t rawTBS
	if rest, err := asn1.Unmarshal(tbs, &t); err != nil || len(rest) > 0 {
		return newErr(ErrMalformed, "tbsResponseData", err)
	}
	for _, s := range t.Responses {
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

// verify accepts der only if it is a successful response about exactly
// cert (serial and issuer hashes), signed by issuer or by a delegate issuer
// signed that carries id-kp-OCSPSigning and is valid at now, with
// ThisUpdate ≤ now+skew and now < NextUpdate (effective). It returns the
// response, its minimal form (the signed parts byte for byte, and in the
// certs field only the delegate that signed it, if any), and the effective
// NextUpdate. A verified Revoked or Unknown answer is returned together
// with ErrRevoked or ErrUnknownStatus.
//
// Every error is told by its type: the structure is checked here, so that
// x/crypto/ocsp is handed a response without certificates and its errors
// can only mean malformed; the signatures are checked here too.
func verify(der []byte, cert, issuer *x509.Certificate, id certID, now time.Time, skew time.Duration) (*ocsp.Response, []byte, time.Time, error) {
	fail := func(err error) (*ocsp.Response, []byte, time.Time, error) { return nil, nil, time.Time{}, err }
	p, err := splitResponse(der)
	if err != nil {
		return fail(err)
	}
	if err := matchCertID(p.tbs, id); err != nil {
		return fail(err)
	}
	resp, err := ocsp.ParseResponseForCert(p.encode(), cert, nil)
	if err != nil {
		return fail(newErr(ErrMalformed, "", err))
	}
	var kept [][]byte
	if len(p.certs) > 0 {
		// x/crypto/ocsp, and so Go's clients, read only the first.
		signer, err := x509.ParseCertificate(p.certs[0])
		if err != nil {
			return fail(newErr(ErrMalformed, "embedded certificate", err))
		}
		if !bytes.Equal(signer.Raw, issuer.Raw) {
			resp.Certificate = signer
			kept = [][]byte{signer.Raw}
		}
	}
	if err := checkSigner(resp, issuer, now); err != nil {
		return fail(err)
	}
	minimal := p.encode(kept...)
	resp.Raw = minimal
	next := resp.NextUpdate
	if next.IsZero() {
		next = resp.ThisUpdate.Add(NoNextUpdateLifetime)
	}
	switch {
	case resp.ThisUpdate.After(now.Add(skew)):
		return fail(newErr(ErrNotYetValid, "thisUpdate "+resp.ThisUpdate.UTC().Format(time.RFC3339), nil))
	case !next.After(resp.ThisUpdate):
		return fail(newErr(ErrMalformed, "nextUpdate not after thisUpdate", nil))
	case !now.Before(next):
		return fail(newErr(ErrExpired, "nextUpdate "+next.UTC().Format(time.RFC3339), nil))
	}
	switch resp.Status {
	case ocsp.Good:
		return resp, minimal, next, nil
	case ocsp.Revoked:
		return resp, minimal, next, newErr(ErrRevoked, "at "+resp.RevokedAt.UTC().Format(time.RFC3339), nil)
	default:
		return resp, minimal, next, ErrUnknownStatus
	}
}

// checkSigner enforces who may sign: the issuer, or a delegate the issuer
// signed (RFC 6960 4.2.2.2) that carries id-kp-OCSPSigning and is valid
// now. resp.Certificate is the delegate, nil when the issuer signed.
func checkSigner(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := resp.Certificate
	if signer == nil {
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return newErr(ErrBadSignature, "not signed by the issuer", err)
		}
		return nil
	}
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
