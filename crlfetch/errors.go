package crlfetch

import (
	"errors"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/errwrap"
	"github.com/tlsemit/tlsemit/internal/httpfetch"
)

// The outcomes of a refused check. Each carries Node's code (the OpenSSL
// name Node reports as a socket's authorizationError) through a method
// Code() string, and so does the error VerifyConnection returns, which
// wraps them: tlsserver.Code reports it.
var (
	// ErrRevoked: a certificate of the chain is listed in its issuer's CRL
	// (CERT_REVOKED).
	ErrRevoked = crl.ErrRevoked
	// ErrExpired: the CRL held for a certificate's issuer is past its
	// nextUpdate and Options.Grace (CRL_HAS_EXPIRED).
	ErrExpired = crl.ErrExpired
	// ErrNotYetValid: the only CRL at hand has a thisUpdate later than now
	// plus Options.ClockSkew (CRL_NOT_YET_VALID).
	ErrNotYetValid = crl.ErrNotYetValid
	// ErrNoCRL: no CRL of a certificate's issuer that covers the
	// certificate is held: never obtained (the host is down, the first
	// fetch is slower than FirstWait), the certificate names no
	// distribution point and no Source gives its issuer's CRL, or the CRL
	// got was refused (UNABLE_TO_GET_CRL).
	ErrNoCRL = crl.ErrNoCRL
	// ErrSignature: the CRL got for a certificate's issuer does not verify
	// with the issuer's key, or the issuer lacks the cRLSign key usage
	// (CRL_SIGNATURE_FAILURE).
	ErrSignature = crl.ErrSignature
)

// Error is a refused check, as VerifyConnection and Check return it: Err
// is the sentinel above that Node's code (Code) comes from, Cert the
// certificate it concerns at Depth in the chain (0 for the client's),
// Cause why no CRL was usable (a fetch failure, wrapping one of the
// sentinels below), and Others the chain's other certificates that failed
// too (errors.Is sees them all; Code is Node's, that of the failure
// nearest the root).
type Error = crl.Error

// Why a fetch failed (Event.Err, CRLStatus.LastError, and the cause of an
// ErrNoCRL). A CRL that fails is not held; the one held before, if any,
// stays.
var (
	// ErrUnreachable: the HTTP exchange failed (refused, reset, timed
	// out), or the file could not be read.
	ErrUnreachable = httpfetch.ErrUnreachable
	// ErrHTTPStatus: the host answered with a status other than 200.
	ErrHTTPStatus = httpfetch.ErrHTTPStatus
	// ErrTooLarge: the CRL is larger than Options.MaxSize, as sent or
	// once decompressed; reading stopped there.
	ErrTooLarge = httpfetch.ErrTooLarge
	// ErrRefusedAddress: a redirect to another origin, or an internal
	// address with Options.RefuseInternalAddresses.
	ErrRefusedAddress = httpfetch.ErrRefusedAddress
	// ErrUnsupportedScheme: a URL or redirect that is not http or https.
	ErrUnsupportedScheme = httpfetch.ErrUnsupportedScheme
	// ErrTooManyRedirects: more than MaxRedirects redirects.
	ErrTooManyRedirects = httpfetch.ErrTooManyRedirects
	// ErrMalformed: the body is not a DER or PEM CRL (HTML, garbage,
	// truncated), or is gzip that does not decompress, or another content
	// encoding.
	ErrMalformed = crl.ErrMalformed
	// ErrUnsupported: a well-formed CRL that is not used: a delta CRL, an
	// indirect CRL, one partitioned by reason, an unknown critical
	// extension, an unknown signature algorithm.
	ErrUnsupported = crl.ErrUnsupported
	// ErrNoIssuer: the CRL's issuer is not the CA it was fetched for.
	ErrNoIssuer = crl.ErrNoIssuer
	// ErrOlderCRL: the CRL's number, or its thisUpdate, is lower than
	// that of the CRL held for the same source and issuer key (a replay,
	// or a stale mirror); the one held stays.
	ErrOlderCRL = errors.New("crlfetch: CRL older than the one held")
	// ErrFirstWait: no CRL was got within Options.FirstWait; the fetch
	// goes on for the next handshake.
	ErrFirstWait = errors.New("crlfetch: no CRL within the first wait")
	// ErrNotVerified: the connection has client certificates but no
	// verified chain: its tls.Config's ClientAuth does not verify them
	// (use VerifyClientCertIfGiven or RequireAndVerifyClientCert).
	ErrNotVerified = errors.New("crlfetch: client certificate not verified: set ClientAuth to verify it")
	// ErrStore: a Store call failed or did not return within
	// Options.StoreTimeout; the Fetcher goes on without it.
	ErrStore = errors.New("crlfetch: store failed")
	// ErrPanic: code the Fetcher calls (OnEvent, the Logger's handler, the
	// Store, the HTTP client's transport) panicked; recovered.
	ErrPanic = errors.New("crlfetch: user code panicked")
	// ErrClosed: the Fetcher was closed.
	ErrClosed = errors.New("crlfetch: fetcher closed")
)

// reasons are the sentinels as error.type names them, in the order
// classify tries them; "unreachable" is for a failure that wraps none (a
// failure nobody anticipated).
var reasons = errwrap.Reasons{
	{Err: ErrClosed, Name: "closed"}, {Err: ErrPanic, Name: "panic"}, {Err: ErrStore, Name: "store"},
	{Err: ErrOlderCRL, Name: "older_crl"}, {Err: ErrRefusedAddress, Name: "refused_address"},
	{Err: ErrUnsupportedScheme, Name: "unsupported_scheme"},
	{Err: ErrTooManyRedirects, Name: "too_many_redirects"}, {Err: ErrHTTPStatus, Name: "http_status"},
	{Err: ErrTooLarge, Name: "too_large"}, {Err: ErrMalformed, Name: "malformed"},
	{Err: ErrUnsupported, Name: "unsupported"}, {Err: ErrNoIssuer, Name: "no_issuer"},
	{Err: ErrSignature, Name: "signature"}, {Err: ErrExpired, Name: "expired"},
	{Err: ErrNotYetValid, Name: "not_yet_valid"}, {Err: ErrUnreachable, Name: "unreachable"},
}

// classify names the sentinel err wraps.
func classify(err error) string { return reasons.Of(err).Name }

func newErr(sentinel error, detail string, cause error) error {
	return errwrap.New(sentinel, detail, cause)
}
