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
//     CRL), unless LeafOnly;
//   - a trust anchor that is not self-issued (an intermediate CA among
//     crypto/x509's roots) is checked against its issuer's CRL, and so is
//     each certificate of its way up (Anchors) to the self-issued root,
//     as OpenSSL builds the chain on to the root; when its issuer is not
//     known it fails with ErrNoCRL (cause ErrUnknownAnchor), as Node
//     refuses a chain that does not reach a self-signed root with
//     UNABLE_TO_GET_CRL;
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
//     under a missing root CRL. Depths go on up the way from the anchor.
//
// It returns nil or an *Error. With no failure it does not allocate.
func (p Policy) Check(chain []*x509.Certificate, now time.Time, find Finder) error {
	return p.check(chain, now, find, true)
}

// CheckUnverified is Check for the chain OpenSSL builds for a certificate
// that failed to verify (OpenSSL goes on checking it, and Node reports
// the last failure it meets): its last certificate is where the building
// stopped, not a trust anchor, and when it is not self-issued (its issuer
// was not found) it is not checked.
func (p Policy) CheckUnverified(chain []*x509.Certificate, now time.Time, find Finder) error {
	return p.check(chain, now, find, false)
}

func (p Policy) check(chain []*x509.Certificate, now time.Time, find Finder, anchored bool) error {
	var failed []*Error
	p.walk(chain, anchored, func(i int, cert, issuer *x509.Certificate) {
		if issuer == nil {
			failed = append(failed, &Error{Err: ErrNoCRL, Cert: cert, Depth: i, Cause: ErrUnknownAnchor})
		} else if err, cause := p.checkCert(cert, issuer, now, find); err != nil {
			failed = append(failed, &Error{Err: err, Cert: cert, Depth: i, Cause: cause})
		}
	})
	if len(failed) == 0 {
		return nil
	}
	top := failed[len(failed)-1]
	top.Others = failed[:len(failed)-1]
	return top
}

// Each calls fn, leaf first, with each certificate Check checks in the
// verified chain and the issuer whose CRL speaks for it: the chain's
// certificates, then the trust anchor's way up. A trust anchor whose
// issuer is not known is left out (Check fails it without looking for a
// CRL). It does not allocate.
func (p Policy) Each(chain []*x509.Certificate, fn func(cert, issuer *x509.Certificate)) {
	p.walk(chain, true, func(_ int, cert, issuer *x509.Certificate) {
		if issuer != nil {
			fn(cert, issuer)
		}
	})
}

// walk calls fn with each certificate to check, its depth and its
// issuer: nil for a trust anchor whose issuer is not known.
func (p Policy) walk(chain []*x509.Certificate, anchored bool, fn func(i int, cert, issuer *x509.Certificate)) {
	if len(chain) == 0 {
		return
	}
	top := chain[len(chain)-1]
	last := len(chain) - 1
	if p.LeafOnly {
		last = 0
	}
	var up []*x509.Certificate
	if last == len(chain)-1 && anchored && !selfIssued(top) {
		if up = p.Anchors.Up(top); !p.LeafOnly {
			last += len(up)
		}
	}
	at := func(i int) *x509.Certificate {
		if i < len(chain) {
			return chain[i]
		}
		return up[i-len(chain)]
	}
	n := len(chain) + len(up)
	for i := 0; i <= last; i++ {
		cert := at(i)
		switch {
		case i+1 < n:
			fn(i, cert, at(i+1))
		case selfIssued(cert):
			fn(i, cert, cert)
		case anchored:
			fn(i, cert, nil)
		}
	}
}

// CheckChains checks each of chains (crypto/x509 may find several paths
// to a root) and returns nil if one passes, else the first chain's error,
// or the first that says revoked. It returns nil for no chains (an empty
// chain is none). The chains that reach a self-issued root (their own, or
// through Anchors) come first, in their order: the one Node builds is
// among them, and a chain that passes costs no allocation for one cut
// short before it.
func (p Policy) CheckChains(chains [][]*x509.Certificate, now time.Time, find Finder) error {
	var first error
	for _, rooted := range []bool{true, false} {
		for _, chain := range chains {
			if len(chain) == 0 || p.rooted(chain) != rooted {
				continue
			}
			err := p.Check(chain, now, find)
			if err == nil {
				return nil
			}
			if first == nil || errors.Is(err, ErrRevoked) && !errors.Is(first, ErrRevoked) {
				first = err
			}
		}
	}
	return first
}

// rooted reports whether Check of chain meets no trust anchor whose
// issuer is not known.
func (p Policy) rooted(chain []*x509.Certificate) bool {
	if p.LeafOnly && len(chain) > 1 {
		return true
	}
	top := chain[len(chain)-1]
	return selfIssued(top) || p.Anchors.Up(top) != nil
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
