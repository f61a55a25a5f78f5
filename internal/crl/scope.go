package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// scope is what a CRL's issuingDistributionPoint extension (RFC 5280
// 5.2.5) restricts it to. A CRL without one covers every certificate of
// its issuer.
type scope struct {
	present          bool
	dp               []byte   // the DistributionPointName element; nil when absent
	fullNames        [][]byte // with a fullName, its GeneralName elements
	onlyUser, onlyCA bool
}

var (
	tagCtx0C = casn1.Tag(0).Constructed().ContextSpecific()
	tagCtx1C = casn1.Tag(1).Constructed().ContextSpecific()
	tagCtx2C = casn1.Tag(2).Constructed().ContextSpecific()
)

// parse reads the extension's value. A CRL this package cannot use to
// clear anyone is refused here: partitioned by reason (onlySomeReasons),
// indirect, or for attribute certificates.
func (s *scope) parse(value cryptobyte.String) error {
	var idp cryptobyte.String
	if !value.ReadASN1(&idp, casn1.SEQUENCE) || !value.Empty() {
		return malformed("issuingDistributionPoint")
	}
	s.present = true
	if idp.PeekASN1Tag(tagCtx0C) {
		var dpn, elem cryptobyte.String
		var tag casn1.Tag
		if !idp.ReadASN1(&dpn, tagCtx0C) || !dpn.ReadAnyASN1Element(&elem, &tag) || !dpn.Empty() {
			return malformed("issuingDistributionPoint distributionPoint")
		}
		s.dp = elem
		switch tag {
		case tagCtx0C: // fullName GeneralNames
			var names cryptobyte.String
			elem.ReadASN1(&names, tagCtx0C)
			for !names.Empty() {
				var name cryptobyte.String
				var t casn1.Tag
				if !names.ReadAnyASN1Element(&name, &t) {
					return malformed("issuingDistributionPoint fullName")
				}
				s.fullNames = append(s.fullNames, name)
			}
			if len(s.fullNames) == 0 {
				return malformed("issuingDistributionPoint fullName is empty")
			}
		case tagCtx1C: // nameRelativeToCRLIssuer: compared whole
		default:
			return malformed("issuingDistributionPoint distributionPoint")
		}
	}
	var err error
	if s.onlyUser, err = readImplicitBool(&idp, 1); err != nil {
		return err
	}
	if s.onlyCA, err = readImplicitBool(&idp, 2); err != nil {
		return err
	}
	if idp.PeekASN1Tag(casn1.Tag(3).ContextSpecific()) {
		return newErr(ErrUnsupported, "CRL partitioned by reason (onlySomeReasons)", nil)
	}
	indirect, err := readImplicitBool(&idp, 4)
	if err != nil {
		return err
	}
	if indirect {
		return newErr(ErrUnsupported, "indirect CRL", nil)
	}
	attr, err := readImplicitBool(&idp, 5)
	if err != nil {
		return err
	}
	if attr {
		return newErr(ErrUnsupported, "CRL of attribute certificates", nil)
	}
	if !idp.Empty() || s.onlyUser && s.onlyCA {
		return malformed("issuingDistributionPoint")
	}
	return nil
}

// readImplicitBool reads an optional [n] IMPLICIT BOOLEAN DEFAULT FALSE.
func readImplicitBool(s *cryptobyte.String, n uint8) (bool, error) {
	tag := casn1.Tag(n).ContextSpecific()
	if !s.PeekASN1Tag(tag) {
		return false, nil
	}
	var v cryptobyte.String
	if !s.ReadASN1(&v, tag) || len(v) != 1 || v[0] != 0 && v[0] != 0xff {
		return false, malformed("issuingDistributionPoint flag")
	}
	return v[0] == 0xff, nil
}

var oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}

// Covers reports whether the CRL's scope includes cert, as OpenSSL
// decides it: a CRL only for end-entity (CA) certificates does not cover
// a CA (end-entity) certificate, where a certificate is a CA when its
// basicConstraints say so; a CRL whose issuing distribution point names a
// distribution point covers only certificates whose CRL distribution
// points extension has one of the same name (or one with neither a name
// nor a CRL issuer). So a partition of a sharded CRL never clears a
// certificate of another partition. Distribution points naming another
// CRL issuer (indirect CRLs) are not used.
func (c *CRL) Covers(cert *x509.Certificate) bool {
	s := &c.scope
	if !s.present {
		return true
	}
	isCA := cert.BasicConstraintsValid && cert.IsCA
	if s.onlyUser && isCA || s.onlyCA && !isCA {
		return false
	}
	if s.dp == nil {
		return true
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidCRLDistributionPoints) {
			return s.coversDP(ext.Value)
		}
	}
	return false
}

// coversDP matches the certificate's CRLDistributionPoints against the
// scope's distribution point name.
func (s *scope) coversDP(value cryptobyte.String) bool {
	var dps cryptobyte.String
	if !value.ReadASN1(&dps, casn1.SEQUENCE) {
		return false
	}
	for !dps.Empty() {
		var dp cryptobyte.String
		if !dps.ReadASN1(&dp, casn1.SEQUENCE) {
			return false
		}
		var dpn, elem, crlIssuer cryptobyte.String
		var hasName, hasIssuer bool
		var tag casn1.Tag
		if !dp.ReadOptionalASN1(&dpn, &hasName, tagCtx0C) ||
			!dp.SkipOptionalASN1(casn1.Tag(1).ContextSpecific()) ||
			!dp.ReadOptionalASN1(&crlIssuer, &hasIssuer, tagCtx2C) {
			return false
		}
		if hasIssuer {
			continue // names another CRL issuer: an indirect CRL's
		}
		if !hasName {
			return true
		}
		if !dpn.ReadAnyASN1Element(&elem, &tag) {
			return false
		}
		if bytes.Equal(elem, s.dp) {
			return true
		}
		if tag == tagCtx0C && len(s.fullNames) > 0 {
			var names cryptobyte.String
			elem.ReadASN1(&names, tagCtx0C)
			for !names.Empty() {
				var name cryptobyte.String
				if !names.ReadAnyASN1Element(&name, &tag) {
					return false
				}
				for _, n := range s.fullNames {
					if bytes.Equal(n, name) {
						return true
					}
				}
			}
		}
	}
	return false
}
