// Package ocspfetch is the OCSP stapler a Node.js user writes inside the
// tls.Server 'OCSPRequest' listener, done properly.
//
// One line wires it into a tlsserver:
//
//	f, _ := ocspfetch.New(ocspfetch.Options{})
//	defer f.Close()
//	srv.OnOCSPRequest(f.OCSPRequest)
//
// and Prefetch, before the server listens, staples even the first
// handshake. A server on plain crypto/tls (net/http's, certmagic's) wraps
// its GetCertificate instead:
//
//	cfg.GetCertificate = f.GetCertificate(getCertificate)
//
// For each certificate it is asked about, a Fetcher:
//
//   - finds the responder: the first http(s) OCSP URL in the Authority
//     Information Access extension ([ResponderURL]); none means no staple
//     and no error, and, for a certificate that names a CRL distribution
//     point instead (Let's Encrypt's since 2025), its revocation learned
//     from its CRL by a crlfetch.Fetcher (Options.CRL): verified,
//     refreshed before its nextUpdate, read again every
//     MinRefreshInterval, never on a handshake's path, and shown by
//     Certificates and reported (EventRevoked) like an OCSP answer;
//   - fetches the issuer from the caIssuers URL when none is given;
//   - asks the responder (SHA-1 CertID unless Options.CertIDHash says
//     otherwise; GET when the encoded request is under 255 bytes as RFC 5019
//     asks, else POST), over http(s) only, following at most MaxRedirects
//     redirects within the URL's scheme and host, and reading at most
//     Options.MaxResponseSize bytes;
//   - verifies the answer before it is cached or stapled: HTTP 200, a
//     successful OCSP response about exactly this certificate (serial,
//     issuer name hash and issuer key hash), signed by the issuer or by a
//     delegate the issuer signed that carries id-kp-OCSPSigning and is valid
//     now, ThisUpdate no later than now plus ClockSkew and now before
//     NextUpdate (a response without NextUpdate lives NoNextUpdateLifetime),
//     and ThisUpdate no earlier than that of the answer it already has (no
//     replay);
//   - staples it minimal, and only if it fits: the signed parts byte for
//     byte, with only the delegate that signed it in its unsigned certs
//     field (padding and other certificates dropped), refused if it would
//     still not fit beside the chain in a TLS 1.2 or TLS 1.3 handshake;
//   - caches it per certificate, keyed by CertID in the Store, so a renewed
//     certificate never gets its predecessor's staple, and answers later
//     handshakes from memory on their own goroutine with no network and no
//     allocation;
//   - refreshes it in the background at the midpoint of its validity, with
//     jitter, never sooner than MinRefreshInterval after the last request;
//     on failure it keeps serving the cached answer until its NextUpdate
//     less a skew margin and retries within MinRetryDelay, backing off
//     exponentially, with jitter, up to MaxRetryDelay; it never staples an
//     expired answer;
//   - on a cold start, holds the handshake at most HandshakeBudget, then lets
//     it go on unstapled while the fetch completes for the next one; all
//     concurrent handshakes share one fetch, and Fetchers sharing a
//     LockingStore share one fetch across a fleet;
//   - reports every failure, revocation and Must-Staple certificate without
//     a staple through Options.OnEvent, the logger if there is one, and
//     [Fetcher.Stats], with an error that wraps one of the package's
//     sentinel errors.
//
// Everything it calls that is not its own is contained: a Store is
// trusted neither for integrity (what it returns is verified) nor for
// availability (each call is bounded in time and size, a panic is
// recovered); a panicking OnEvent, Logger or HTTP transport costs at most
// the fetch it happened in. See docs/ocsp.md for the rules.
//
// What golang.org/x/crypto/ocsp leaves to its callers (time checks, the
// OCSPSigning EKU and validity of a delegated signer, the issuer hashes of
// the CertID) is checked here.
//
// Revoked answers are not stapled unless Options.StapleRevoked is set; the
// handshake fails instead of going on unstapled only with
// Options.FailClosed.
//
// [Fetcher.Certificates] says, per certificate, what is stapled, until
// when, when the next refresh comes and what went wrong last;
// Options.MeterProvider receives OpenTelemetry metrics (responder
// requests, answers, failures, each staple's age and time left:
// docs/metrics.md); package statuspage shows both on a page.
package ocspfetch
