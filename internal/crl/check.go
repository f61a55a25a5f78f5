package crl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"time"
)

// Finder returns the verified CRLs that may speak for cert, issued by
// issuer (Check keeps those issued with issuer's name and key that cover
// cert), and, when it has none, why (a load or fetch failure, or nil).
type Finder func(cert, issuer *x509.Certificate) (crls []*CRL, why error)

// Check checks one verified chain (leaf first, trust anchor last, as
// crypto/x509 builds them and crypto/tls hands them to VerifyConnection)
// against the CRLs find returns, as Node's tls.Server with `crl` set does
// (OpenSSL's X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL, observed
// with Node v20):
//
//   - every certificate is checked, the trust anchor too (against its own
//     CRL), unless LeafOnly; an anchor that is not self-issued (a partial
//     chain, which Node does not build) cannot be, and is not;
//   - of the CRLs of a certificate's issuer that cover it, the one used is
//     a time-valid one if there is one, then the one with the latest
//     thisUpdate (then the highest number; then the first);
//   - a certificate listed in it is revoked (ErrRevoked) even if the CRL is
//     expired or not yet valid; otherwise such a CRL gives ErrExpired or
//     ErrNotYetValid;
//   - without a CRL it is ErrNoCRL, or, when find says why and the reason
//     is a bad signature or a CRL out of its time, that reason's sentinel
//     (what Node reports when it holds such a CRL);
//   - when several certificates fail, the error reported is that of the
//     one highest in the chain, as Node reports it (the last error OpenSSL
//     meets); it also wraps the others, so errors.Is sees a revoked leaf
//     under a missing root CRL.
//
// It returns nil or an *Error. With no failure it does not allocate.
func (p Policy) Check(chain []*x509.Certificate, now time.Time, find Finder) error {
	last := len(chain) - 1
	if p.LeafOnly {
		last = min(last, 0)
	}
	var failed []*Error
	for i := 0; i <= last; i++ {
		cert, issuer := chain[i], chain[i]
		if i+1 < len(chain) {
			issuer = chain[i+1]
		} else if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
			break // a trust anchor whose issuer is not known
		}
		if err, cause := p.checkCert(cert, issuer, now, find); err != nil {
			failed = append(failed, &Error{Err: err, Cert: cert, Depth: i, Cause: cause})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	top := failed[len(failed)-1]
	top.Others = failed[:len(failed)-1]
	return top
}

// CheckChains checks each of chains (crypto/x509 may find several paths
// to a root) and returns nil if one passes, else the first chain's error,
// or the first that says revoked. It returns nil for no chains.
func (p Policy) CheckChains(chains [][]*x509.Certificate, now time.Time, find Finder) error {
	var first error
	for _, chain := range chains {
		err := p.Check(chain, now, find)
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(err, ErrRevoked) && !errors.Is(first, ErrRevoked) {
			first = err
		}
	}
	return first
}

// checkCert returns the sentinel of cert's failure and its cause, or nil.
func (p Policy) checkCert(cert, issuer *x509.Certificate, now time.Time, find Finder) (error, error) {
	crls, why := find(cert, issuer)
	var best *CRL
	bestValid := false
	for _, c := range crls {
		if c == nil || c.Issuer == nil || !bytes.Equal(c.RawIssuer, issuer.RawSubject) ||
			!bytes.Equal(c.Issuer.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo) || !c.Covers(cert) {
			continue
		}
		valid := p.Usable(c, now) == nil
		if best == nil || valid && !bestValid || valid == bestValid && newer(c, best) {
			best, bestValid = c, valid
		}
	}
	if best == nil {
		for _, s := range []error{ErrSignature, ErrExpired, ErrNotYetValid} {
			if errors.Is(why, s) {
				return s, why
			}
		}
		return ErrNoCRL, why
	}
	serial, ok := CertificateSerial(cert)
	if !ok || best.Revoked(serial) {
		return ErrRevoked, nil
	}
	if !bestValid {
		err := p.Usable(best, now)
		if errors.Is(err, ErrNotYetValid) {
			return ErrNotYetValid, err
		}
		return ErrExpired, err
	}
	return nil, nil
}

// newer reports whether a supersedes b: a later thisUpdate, or the same
// and a higher CRL number.
func newer(a, b *CRL) bool {
	if !a.ThisUpdate.Equal(b.ThisUpdate) {
		return a.ThisUpdate.After(b.ThisUpdate)
	}
	return a.Number != nil && b.Number != nil && a.Number.Cmp(b.Number) > 0
}
