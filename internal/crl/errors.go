package crl

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/tlsemit/tlsemit/internal/errwrap"
)

// codeError is a sentinel that carries Node's code for it: the OpenSSL
// X509_V_ERR name Node reports as a socket's authorizationError.
type codeError struct{ code, msg string }

func (e *codeError) Error() string { return e.msg }

// Code returns Node's code.
func (e *codeError) Code() string { return e.code }

// The outcomes of a failed check, each with Node's code (Code). They are
// the sentinels the errors of Check wrap.
var (
	// ErrRevoked: the certificate is listed in its issuer's CRL
	// (CERT_REVOKED). A listing with reason removeFromCRL does not count,
	// as in OpenSSL.
	ErrRevoked error = &codeError{"CERT_REVOKED", "crl: certificate revoked"}
	// ErrExpired: the CRL that speaks for the certificate is past its
	// nextUpdate, and past the grace period if there is one
	// (CRL_HAS_EXPIRED).
	ErrExpired error = &codeError{"CRL_HAS_EXPIRED", "crl: CRL has expired"}
	// ErrNotYetValid: the CRL's thisUpdate is later than now plus the
	// clock skew allowed (CRL_NOT_YET_VALID).
	ErrNotYetValid error = &codeError{"CRL_NOT_YET_VALID", "crl: CRL is not yet valid"}
	// ErrNoCRL: no CRL of the certificate's issuer that covers it is held
	// while CRLs are in force (UNABLE_TO_GET_CRL).
	ErrNoCRL error = &codeError{"UNABLE_TO_GET_CRL", "crl: unable to get CRL"}
	// ErrSignature: the CRL does not verify with its issuer's key, or the
	// issuer may not sign CRLs (no cRLSign key usage) (CRL_SIGNATURE_FAILURE).
	ErrSignature error = &codeError{"CRL_SIGNATURE_FAILURE", "crl: CRL signature failure"}
)

// Errors of loading a CRL, without a Node code of their own: a CRL that
// fails to load is not held, and its issuer's certificates meet ErrNoCRL.
var (
	// ErrMalformed: the bytes are not a DER or PEM CRL as RFC 5280
	// defines it.
	ErrMalformed = errors.New("crl: malformed CRL")
	// ErrUnsupported: a well-formed CRL this package does not use: a
	// delta CRL, an indirect CRL (or an entry naming another issuer), a
	// CRL partitioned by reason (onlySomeReasons) or for attribute
	// certificates, an unknown critical extension, an unknown signature
	// algorithm.
	ErrUnsupported = errors.New("crl: unsupported CRL")
	// ErrNoIssuer: none of the certificates the CRL was to be verified
	// with is its issuer (by name).
	ErrNoIssuer = errors.New("crl: CRL issuer not among the CA certificates")
)

// Code returns the Node code err carries (the Code method of the first
// error in its tree that has one), "" when none.
func Code(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

// Error is a failed revocation check of a chain. Err is the sentinel Node
// would report for it, about Cert at Depth (0 for the leaf); Cause, when
// set, is why there was no usable CRL (a fetch or load failure). Others
// are the chain's other certificates that failed too: errors.Is sees them
// all, Code only Err.
type Error struct {
	Err    error
	Cert   *x509.Certificate
	Depth  int
	Cause  error
	Others []*Error
}

// Code returns Node's code for the failure: that of Err.
func (e *Error) Code() string { return Code(e.Err) }

// Error says what failed, for which certificate, and why.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Cert != nil {
		fmt.Fprintf(&b, ": %s, serial %s (depth %d)", e.Cert.Subject, strings.ToUpper(e.Cert.SerialNumber.Text(16)), e.Depth)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	for _, o := range e.Others {
		b.WriteString("; also ")
		b.WriteString(o.Error())
	}
	return b.String()
}

// Unwrap returns Err, Cause and the Others.
func (e *Error) Unwrap() []error {
	errs := []error{e.Err}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	for _, o := range e.Others {
		errs = append(errs, o)
	}
	return errs
}

func newErr(sentinel error, detail string, cause error) error {
	return errwrap.New(sentinel, detail, cause)
}

func malformed(what string) error { return newErr(ErrMalformed, what, nil) }
