package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRL is a parsed certificate revocation list (RFC 5280 section 5) and an
// index of the serial numbers it lists. It is immutable; lookups are safe
// from any number of goroutines.
//
// The index points into Raw: the CRL keeps the DER it was parsed from and
// about half as much again (an open-addressing table of 8 bytes a slot,
// at most half full), and nothing per entry.
type CRL struct {
	// Raw is the whole DER CRL. It must not be modified.
	Raw []byte
	// RawTBS is the signed part, tbsCertList.
	RawTBS []byte
	// RawIssuer is the issuer's Name, DER: it equals the RawSubject of the
	// certificate that issued the CRL.
	RawIssuer []byte
	// ThisUpdate and NextUpdate are the CRL's; NextUpdate is zero when
	// the CRL has none (it never expires, as in OpenSSL).
	ThisUpdate, NextUpdate time.Time
	// Number is the cRLNumber extension; nil when the CRL has none (a v1
	// CRL, say).
	Number *big.Int
	// AuthorityKeyID is the keyIdentifier of the authorityKeyIdentifier
	// extension, if any.
	AuthorityKeyID []byte
	// SignatureAlgorithm is the algorithm of Signature over RawTBS.
	SignatureAlgorithm x509.SignatureAlgorithm
	// Signature is the signature's bits.
	Signature []byte

	// Issuer is the certificate whose key verified the signature; nil
	// for a CRL from Parse (not verified).
	Issuer *x509.Certificate

	scope scope
	v1    bool // no version field: no extensions allowed
	n     int  // entries
	idx   index
}

// Len returns the number of entries (revoked certificates) in the CRL.
func (c *CRL) Len() int { return c.n }

// Revoked reports whether the serial number whose DER INTEGER content
// octets are serial is revoked by the CRL: listed, with any reason but
// removeFromCRL. It does not allocate.
func (c *CRL) Revoked(serial []byte) bool {
	found, removed := c.idx.lookup(c.Raw, serial)
	return found && !removed
}

// CertificateSerial returns the content octets of cert's serial number
// INTEGER, as the CRL's index compares them, read from the certificate's
// DER (no allocation).
func CertificateSerial(cert *x509.Certificate) ([]byte, bool) {
	tbs := cryptobyte.String(cert.RawTBSCertificate)
	var serial cryptobyte.String
	if !tbs.ReadASN1(&tbs, casn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(casn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1(&serial, casn1.INTEGER) || len(serial) == 0 {
		return nil, false
	}
	return serial, true
}

// Tags and extension identifiers, as the DER of their OBJECT IDENTIFIER
// content.
var (
	tagExplicit0 = casn1.Tag(0).Constructed().ContextSpecific()

	oidAKID          = []byte{0x55, 0x1d, 0x23} // 2.5.29.35
	oidCRLNumber     = []byte{0x55, 0x1d, 0x14} // 2.5.29.20
	oidDeltaCRL      = []byte{0x55, 0x1d, 0x1b} // 2.5.29.27
	oidIDP           = []byte{0x55, 0x1d, 0x1c} // 2.5.29.28
	oidFreshestCRL   = []byte{0x55, 0x1d, 0x2e} // 2.5.29.46
	oidIssuerAltName = []byte{0x55, 0x1d, 0x12} // 2.5.29.18
	oidAIA           = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01}

	oidReasonCode      = []byte{0x55, 0x1d, 0x15} // 2.5.29.21
	oidHoldInstruction = []byte{0x55, 0x1d, 0x17} // 2.5.29.23
	oidInvalidityDate  = []byte{0x55, 0x1d, 0x18} // 2.5.29.24
	oidCertIssuer      = []byte{0x55, 0x1d, 0x1d} // 2.5.29.29
)

// reasonRemoveFromCRL is the CRLReason of an entry that a delta CRL
// removes; OpenSSL does not count such an entry as a revocation.
const reasonRemoveFromCRL = 8

// Parse parses a DER CRL and indexes its entries, without verifying its
// signature (Load does). It refuses what RFC 5280 does not allow and what
// this package does not use (ErrUnsupported): delta CRLs, indirect CRLs
// and entries naming another certificate issuer, CRLs partitioned by
// reason or for attribute certificates, unknown critical CRL or entry
// extensions, serials longer than 255 bytes. der is kept (CRL.Raw) and
// must not be modified afterwards.
func Parse(der []byte) (*CRL, error) {
	c, entries, err := parseTBS(der)
	if err != nil {
		return nil, err
	}
	if err := c.indexEntries(entries); err != nil {
		return nil, err
	}
	return c, nil
}

// parseTBS parses everything but the entries, which it returns for
// indexEntries.
func parseTBS(der []byte) (*CRL, cryptobyte.String, error) {
	if uint64(len(der)) >= 1<<32 {
		return nil, nil, newErr(ErrUnsupported, "CRL of 4 GiB or more", nil)
	}
	der = der[:len(der):len(der)] // offsets in the index are from cap
	c := &CRL{Raw: der}
	in := cryptobyte.String(der)
	var outer, tbsElem, tbs, sigAlg, innerAlg cryptobyte.String
	if !in.ReadASN1(&outer, casn1.SEQUENCE) || !in.Empty() {
		return nil, nil, malformed("not a DER SEQUENCE, or trailing data")
	}
	if !outer.ReadASN1Element(&tbsElem, casn1.SEQUENCE) || !outer.ReadASN1Element(&sigAlg, casn1.SEQUENCE) {
		return nil, nil, malformed("CertificateList")
	}
	var sig []byte
	{
		var bits cryptobyte.String
		if !outer.ReadASN1(&bits, casn1.BIT_STRING) || len(bits) < 1 || bits[0] != 0 || !outer.Empty() {
			return nil, nil, malformed("signature")
		}
		sig = bits[1:]
	}
	c.RawTBS, c.Signature = tbsElem, sig
	tbs = tbsElem
	tbs.ReadASN1(&tbs, casn1.SEQUENCE)

	v2 := false
	if tbs.PeekASN1Tag(casn1.INTEGER) {
		var version int
		if !tbs.ReadASN1Integer(&version) || version != 1 {
			return nil, nil, malformed("version is not v2")
		}
		v2 = true
	}
	if !tbs.ReadASN1Element(&innerAlg, casn1.SEQUENCE) || !bytes.Equal(innerAlg, sigAlg) {
		return nil, nil, malformed("inner and outer signature algorithms differ")
	}
	alg, err := signatureAlgorithm(sigAlg)
	if err != nil {
		return nil, nil, err
	}
	c.SignatureAlgorithm = alg

	var issuer cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, casn1.SEQUENCE) || !validName(issuer) {
		return nil, nil, malformed("issuer")
	}
	c.RawIssuer = issuer
	if c.ThisUpdate, err = readTime(&tbs); err != nil {
		return nil, nil, malformed("thisUpdate")
	}
	if tbs.PeekASN1Tag(casn1.UTCTime) || tbs.PeekASN1Tag(casn1.GeneralizedTime) {
		if c.NextUpdate, err = readTime(&tbs); err != nil {
			return nil, nil, malformed("nextUpdate")
		}
	}
	var entries cryptobyte.String
	if tbs.PeekASN1Tag(casn1.SEQUENCE) && !tbs.ReadASN1(&entries, casn1.SEQUENCE) {
		return nil, nil, malformed("revokedCertificates")
	}
	if tbs.PeekASN1Tag(tagExplicit0) {
		if !v2 {
			return nil, nil, malformed("extensions in a v1 CRL")
		}
		var exts cryptobyte.String
		if !tbs.ReadASN1(&exts, tagExplicit0) || !exts.ReadASN1(&exts, casn1.SEQUENCE) {
			return nil, nil, malformed("crlExtensions")
		}
		if err := c.parseExtensions(exts); err != nil {
			return nil, nil, err
		}
	}
	if !tbs.Empty() {
		return nil, nil, malformed("trailing data in tbsCertList")
	}
	c.v1 = !v2 // entry extensions need v2 too: indexEntries checks
	return c, entries, nil
}

// parseExtensions reads the CRL's extensions: the ones it knows, and
// refuses unknown critical ones, duplicates and delta CRLs.
func (c *CRL) parseExtensions(exts cryptobyte.String) error {
	seen := map[string]bool{}
	for !exts.Empty() {
		oid, critical, value, ok := readExtension(&exts)
		if !ok {
			return malformed("extension")
		}
		if seen[string(oid)] {
			return malformed("duplicate extension")
		}
		seen[string(oid)] = true
		switch {
		case bytes.Equal(oid, oidCRLNumber):
			c.Number = new(big.Int)
			if !value.ReadASN1Integer(c.Number) || !value.Empty() {
				return malformed("cRLNumber")
			}
		case bytes.Equal(oid, oidAKID):
			var akid cryptobyte.String
			if !value.ReadASN1(&akid, casn1.SEQUENCE) || !value.Empty() {
				return malformed("authorityKeyIdentifier")
			}
			if akid.PeekASN1Tag(casn1.Tag(0).ContextSpecific()) {
				var id cryptobyte.String
				if !akid.ReadASN1(&id, casn1.Tag(0).ContextSpecific()) {
					return malformed("authorityKeyIdentifier")
				}
				c.AuthorityKeyID = id
			}
		case bytes.Equal(oid, oidIDP):
			if err := c.scope.parse(value); err != nil {
				return err
			}
		case bytes.Equal(oid, oidDeltaCRL):
			return newErr(ErrUnsupported, "delta CRL (deltaCRLIndicator)", nil)
		case bytes.Equal(oid, oidFreshestCRL), bytes.Equal(oid, oidIssuerAltName), bytes.Equal(oid, oidAIA):
			// Known and of no consequence here: this CRL is used as the
			// complete CRL it is, without the deltas freshestCRL points to.
		default:
			if critical {
				return newErr(ErrUnsupported, "unknown critical CRL extension "+oidString(oid), nil)
			}
		}
	}
	return nil
}

// indexEntries scans the revoked certificates in place and indexes their
// serials: one pass, no allocation per entry.
func (c *CRL) indexEntries(entries cryptobyte.String) error {
	// A first pass counts the entries, so that the table is made once,
	// at its size.
	n := 0
	for e := entries; !e.Empty(); n++ {
		if !e.SkipASN1(casn1.SEQUENCE) {
			return malformed("revoked certificate entry")
		}
	}
	c.idx.init(n)
	ps := make([]pending, 0, n)
	base := cap(c.Raw)
	for !entries.Empty() {
		var entry, serial, date cryptobyte.String
		var dateTag casn1.Tag
		if !entries.ReadASN1(&entry, casn1.SEQUENCE) || !entry.ReadASN1(&serial, casn1.INTEGER) ||
			!entry.ReadAnyASN1(&date, &dateTag) {
			return malformed("revoked certificate entry")
		}
		if !minimalInteger(serial) {
			return malformed("serial number")
		}
		if len(serial) > maxSerial {
			return newErr(ErrUnsupported, "serial number longer than 255 bytes", nil)
		}
		if !validEntryTime(date, dateTag) {
			return malformed("revocationDate")
		}
		removed := false
		if !entry.Empty() {
			if c.v1 {
				return malformed("entry extensions in a v1 CRL")
			}
			var err error
			if removed, err = entryExtensions(entry); err != nil {
				return err
			}
		}
		ps = append(ps, c.idx.prepare(c.Raw, base-cap(serial), len(serial), removed))
	}
	c.n = len(ps)
	c.idx.build(c.Raw, ps)
	return nil
}

// entryExtensions reads one entry's extensions: whether its reason is
// removeFromCRL, and an error for an indirect entry, a malformed reason or
// an unknown critical extension.
func entryExtensions(entry cryptobyte.String) (removed bool, err error) {
	var exts cryptobyte.String
	if !entry.ReadASN1(&exts, casn1.SEQUENCE) || !entry.Empty() {
		return false, malformed("crlEntryExtensions")
	}
	for !exts.Empty() {
		oid, critical, value, ok := readExtension(&exts)
		if !ok {
			return false, malformed("entry extension")
		}
		switch {
		case bytes.Equal(oid, oidReasonCode):
			var reason int
			if !value.ReadASN1Enum(&reason) || !value.Empty() {
				return false, malformed("reasonCode")
			}
			removed = reason == reasonRemoveFromCRL
		case bytes.Equal(oid, oidCertIssuer):
			return false, newErr(ErrUnsupported, "entry names another certificate issuer (indirect CRL)", nil)
		case bytes.Equal(oid, oidInvalidityDate), bytes.Equal(oid, oidHoldInstruction):
		default:
			if critical {
				return false, newErr(ErrUnsupported, "unknown critical entry extension "+oidString(oid), nil)
			}
		}
	}
	return removed, nil
}

// readExtension reads one Extension: its OID's content octets, whether it
// is critical, and its value's content octets.
func readExtension(exts *cryptobyte.String) (oid []byte, critical bool, value cryptobyte.String, ok bool) {
	var ext, id cryptobyte.String
	if !exts.ReadASN1(&ext, casn1.SEQUENCE) || !ext.ReadASN1(&id, casn1.OBJECT_IDENTIFIER) || len(id) == 0 {
		return nil, false, nil, false
	}
	if ext.PeekASN1Tag(casn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical) {
		return nil, false, nil, false
	}
	if !ext.ReadASN1(&value, casn1.OCTET_STRING) || !ext.Empty() {
		return nil, false, nil, false
	}
	return id, critical, value, true
}

// minimalInteger reports whether b is the content of a DER INTEGER:
// non-empty and in its shortest form (as cryptobyte's ReadASN1Integer
// requires).
func minimalInteger(b []byte) bool {
	switch {
	case len(b) == 0:
		return false
	case len(b) == 1:
		return true
	case b[0] == 0 && b[1]&0x80 == 0, b[0] == 0xff && b[1]&0x80 == 0x80:
		return false
	}
	return true
}

// validEntryTime checks a revocationDate's shape without converting it
// (a million time.Parse calls would dominate the load, and the date is
// never used): a UTCTime of 13 bytes or a GeneralizedTime of 15, in UTC
// ('Z'), as RFC 5280 requires. The CRL's own dates are parsed in full.
func validEntryTime(b []byte, tag casn1.Tag) bool {
	switch tag {
	case casn1.UTCTime:
		return len(b) == 13 && b[12] == 'Z'
	case casn1.GeneralizedTime:
		return len(b) == 15 && b[14] == 'Z'
	}
	return false
}

// readTime reads a UTCTime or GeneralizedTime, as crypto/x509 does.
func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(casn1.UTCTime):
		if s.ReadASN1UTCTime(&t) {
			return t, nil
		}
	case s.PeekASN1Tag(casn1.GeneralizedTime):
		if s.ReadASN1GeneralizedTime(&t) {
			return t, nil
		}
	}
	return t, ErrMalformed
}

// validName checks that name is an RDNSequence: a SEQUENCE of SETs of
// SEQUENCEs of an OID and a value. Issuers are compared as bytes.
func validName(name cryptobyte.String) bool {
	if !name.ReadASN1(&name, casn1.SEQUENCE) {
		return false
	}
	for !name.Empty() {
		var rdn cryptobyte.String
		if !name.ReadASN1(&rdn, casn1.SET) {
			return false
		}
		for !rdn.Empty() {
			var atv, oid, value cryptobyte.String
			var tag casn1.Tag
			if !rdn.ReadASN1(&atv, casn1.SEQUENCE) || !atv.ReadASN1(&oid, casn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&value, &tag) || !atv.Empty() {
				return false
			}
		}
	}
	return true
}

// oidString renders an OID's content octets in dotted form, for errors.
func oidString(b []byte) string {
	var der cryptobyte.Builder
	der.AddASN1(casn1.OBJECT_IDENTIFIER, func(c *cryptobyte.Builder) { c.AddBytes(b) })
	raw, err := der.Bytes()
	s := cryptobyte.String(raw)
	var oid asn1.ObjectIdentifier
	if err == nil && s.ReadASN1ObjectIdentifier(&oid) {
		return oid.String()
	}
	return "(malformed OID)"
}
