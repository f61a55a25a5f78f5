package ocspfetch

import (
	"errors"

	"github.com/tlsemit/tlsemit/internal/errwrap"
)

// Sentinel errors. Every error the package reports (through Staple, the
// FailClosed callback, Event.Err and Stats) wraps exactly one of them, so
// errors.Is tells the reason apart from the detail.
var (
	// ErrNoResponder: the certificate names no http(s) OCSP responder in
	// its Authority Information Access extension. It is not a failure: the
	// handshake goes on without a staple even with FailClosed.
	ErrNoResponder = errors.New("ocspfetch: certificate has no http(s) OCSP responder URL")

	// ErrNoIssuer: the issuer certificate was not given and could not be
	// obtained from the certificate's caIssuers URL, or the given issuer did
	// not sign the certificate.
	ErrNoIssuer = errors.New("ocspfetch: issuer certificate unavailable")

	// ErrBadCertificate: the certificate handed to the Fetcher does not
	// parse.
	ErrBadCertificate = errors.New("ocspfetch: certificate does not parse")

	// ErrRefusedAddress: the responder's address is loopback, link-local,
	// private or otherwise internal, and Options.RefuseInternalAddresses is
	// set; or a redirect leads away from the URL's scheme and host.
	ErrRefusedAddress = errors.New("ocspfetch: responder address refused")

	// ErrUnsupportedScheme: a responder or caIssuers URL, or a redirect,
	// is not http or https.
	ErrUnsupportedScheme = errors.New("ocspfetch: URL scheme is not http or https")

	// ErrTooManyRedirects: the responder redirected more than MaxRedirects
	// times (a loop, usually).
	ErrTooManyRedirects = errors.New("ocspfetch: too many redirects")

	// ErrUnreachable: the HTTP exchange failed: the responder is down,
	// refused the connection, timed out or broke the connection.
	ErrUnreachable = errors.New("ocspfetch: responder unreachable")

	// ErrHTTPStatus: the responder answered with an HTTP status other than
	// 200.
	ErrHTTPStatus = errors.New("ocspfetch: responder HTTP status is not 200")

	// ErrResponseTooLarge: the body (or what a Store returned) exceeded
	// Options.MaxResponseSize, and reading stopped there; or a verified
	// response, even without the certificates it need not carry, would not
	// fit beside the certificate chain in a TLS handshake.
	ErrResponseTooLarge = errors.New("ocspfetch: response body too large")

	// ErrMalformed: the body is not a well-formed OCSP response (HTML,
	// garbage, truncated DER, unsupported hash, critical extensions).
	ErrMalformed = errors.New("ocspfetch: malformed OCSP response")

	// ErrResponderStatus: the OCSP response status is not "successful"
	// (tryLater, internalError, unauthorized, …). The ocsp.ResponseError is
	// wrapped too.
	ErrResponderStatus = errors.New("ocspfetch: OCSP responder status is not successful")

	// ErrWrongCertificate: the response is about another certificate: its
	// CertID serial, issuer name hash or issuer key hash differs.
	ErrWrongCertificate = errors.New("ocspfetch: OCSP response is for another certificate")

	// ErrBadSignature: the response's signature does not verify with the
	// issuer (or with the certificate it embeds).
	ErrBadSignature = errors.New("ocspfetch: bad OCSP response signature")

	// ErrBadSigner: the response is signed by a delegate that the issuer did
	// not sign, that lacks the id-kp-OCSPSigning extended key usage, or that
	// is not valid now.
	ErrBadSigner = errors.New("ocspfetch: OCSP response signer not authorized")

	// ErrNotYetValid: ThisUpdate is later than now plus ClockSkew.
	ErrNotYetValid = errors.New("ocspfetch: OCSP response not yet valid")

	// ErrExpired: NextUpdate has passed (or, for a response without
	// NextUpdate, ThisUpdate plus NoNextUpdateLifetime has).
	ErrExpired = errors.New("ocspfetch: OCSP response expired")

	// ErrRevoked: the responder says the certificate is revoked (the
	// response is stapled only with Options.StapleRevoked), or, for a
	// certificate that names no responder, its CRL lists it (the
	// crlfetch.ErrRevoked is wrapped too).
	ErrRevoked = errors.New("ocspfetch: certificate revoked")

	// ErrUnknownStatus: the responder does not know the certificate. Such
	// a response is never stapled.
	ErrUnknownStatus = errors.New("ocspfetch: certificate status unknown to the responder")

	// ErrOlderResponse: the response's ThisUpdate is earlier than that of
	// one already accepted for the certificate (a replay, or a stale cache
	// on the way); the newer one stays.
	ErrOlderResponse = errors.New("ocspfetch: OCSP response older than the one already held")

	// ErrCRLUnavailable: the revocation of a certificate that names no
	// OCSP responder could not be learned from its CRL: none was got
	// (the host is down, what it served was refused), or the one held is
	// past its nextUpdate. The crlfetch error (crlfetch.ErrNoCRL,
	// crlfetch.ErrExpired, …) is wrapped too. Nothing is stapled for such
	// a certificate either way; handshakes are not affected.
	ErrCRLUnavailable = errors.New("ocspfetch: certificate revocation unknown: no usable CRL")

	// ErrBudgetExceeded: the answer was not there within
	// Options.HandshakeBudget; the handshake went on without it while the
	// fetch continues in the background.
	ErrBudgetExceeded = errors.New("ocspfetch: OCSP answer later than the handshake budget")

	// ErrCacheMiss is returned by a Store's Load when it holds nothing for
	// the key.
	ErrCacheMiss = errors.New("ocspfetch: not in store")

	// ErrLocked is returned by a LockingStore's Lock when another holds the
	// lock.
	ErrLocked = errors.New("ocspfetch: locked by another fetcher")

	// ErrStore: a Store call failed or did not return within
	// Options.StoreTimeout. The fetch goes on without the Store. Close's
	// error wraps it when Store calls it waited for were abandoned.
	ErrStore = errors.New("ocspfetch: store failed")

	// ErrPanic: code the Fetcher calls (OnEvent, the Store, the HTTP
	// client's transport) panicked. The panic was recovered; it cost at
	// most the fetch it happened in.
	ErrPanic = errors.New("ocspfetch: user code panicked")

	// ErrClosed: the Fetcher was closed.
	ErrClosed = errors.New("ocspfetch: fetcher closed")
)

// reasons are the sentinels as error.type spells them, in the order
// classify tries them; ErrUnreachable is for a failure that wraps none (a
// transport failure we did not anticipate).
var reasons = errwrap.Reasons{
	{Err: ErrClosed, Name: "closed"}, {Err: ErrNoResponder, Name: "no_responder"},
	{Err: ErrNoIssuer, Name: "no_issuer"}, {Err: ErrBadCertificate, Name: "bad_certificate"},
	{Err: ErrRefusedAddress, Name: "refused_address"},
	{Err: ErrUnsupportedScheme, Name: "unsupported_scheme"},
	{Err: ErrTooManyRedirects, Name: "too_many_redirects"}, {Err: ErrHTTPStatus, Name: "http_status"},
	{Err: ErrResponseTooLarge, Name: "response_too_large"}, {Err: ErrMalformed, Name: "malformed"},
	{Err: ErrResponderStatus, Name: "responder_status"},
	{Err: ErrWrongCertificate, Name: "wrong_certificate"}, {Err: ErrBadSignature, Name: "bad_signature"},
	{Err: ErrBadSigner, Name: "bad_signer"}, {Err: ErrNotYetValid, Name: "not_yet_valid"},
	{Err: ErrExpired, Name: "expired"}, {Err: ErrRevoked, Name: "revoked"},
	{Err: ErrUnknownStatus, Name: "unknown_status"}, {Err: ErrOlderResponse, Name: "older_response"},
	{Err: ErrCRLUnavailable, Name: "crl_unavailable"}, {Err: ErrBudgetExceeded, Name: "budget_exceeded"},
	{Err: ErrCacheMiss, Name: "cache_miss"}, {Err: ErrLocked, Name: "locked"},
	{Err: ErrStore, Name: "store"}, {Err: ErrPanic, Name: "panic"},
	{Err: ErrUnreachable, Name: "unreachable"},
}

// classify returns the sentinel err wraps.
func classify(err error) error { return reasons.Of(err).Err }

func newErr(sentinel error, detail string, cause error) error {
	return errwrap.New(sentinel, detail, cause)
}
