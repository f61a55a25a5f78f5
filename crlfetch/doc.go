// Package crlfetch checks client certificates against their issuers'
// certificate revocation lists: what a Node.js user writes by hand around
// tls.createServer({ca, crl, requestCert}), done properly. It plugs into
// any Go TLS server through crypto/tls's own hook:
//
//	f, err := crlfetch.New(crlfetch.Options{})
//	cfg := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, VerifyConnection: f.VerifyConnection}
//	defer f.Close()
//
// With no options the CRLs come from the certificates' CRL distribution
// points (http and https); Options.Sources adds URLs and files for CAs
// whose certificates name none. For each CRL a Fetcher:
//
//   - fetches it when a certificate that needs it is first checked (a URL
//     Source from New on; a file Source is read by New), over http(s) only,
//     following at most MaxRedirects redirects within the URL's origin,
//     reading at most MaxSize bytes (a gzip body decompressed within the
//     same bound), DER or PEM, one fetch per URL at a time;
//   - verifies it before it is used: signed by the certificate's issuer
//     (same name and key; a CA with key usages must have cRLSign),
//     thisUpdate no later than now plus ClockSkew, nextUpdate not passed,
//     a CRL number and thisUpdate never lower than those of the CRL held
//     from the same source (a replay is refused, the newer CRL stays), no
//     unknown critical extension (CRL or entry);
//   - builds its index aside and swaps it in atomically: a check reads a
//     snapshot and never waits for a refresh;
//   - refreshes it in the background before its nextUpdate, whatever its
//     lifetime: at the middle of thisUpdate..nextUpdate (of what is left,
//     for a CRL got late) and at least every MaxRefreshInterval, with
//     jitter, by conditional GET (ETag, Last-Modified); after a failure it
//     retries with exponential backoff from MinRetryDelay to MaxRetryDelay,
//     never later than half the time the CRL held has left; files are
//     looked at every FilePollInterval and read again when they change;
//   - keeps the last verified CRL of each URL in the Store, if there is
//     one, and at the first check after a restart uses it (verified again)
//     before, or without, the host.
//
// # Checks, as Node makes them
//
// VerifyConnection and Check refuse a chain with Node's codes, from an
// error whose method Code() string gives them (tlsserver.Code reads it):
// CERT_REVOKED (ErrRevoked), UNABLE_TO_GET_CRL (ErrNoCRL), CRL_HAS_EXPIRED
// (ErrExpired), CRL_SIGNATURE_FAILURE (ErrSignature), CRL_NOT_YET_VALID
// (ErrNotYetValid). As Node does (OpenSSL's X509_V_FLAG_CRL_CHECK and
// CRL_CHECK_ALL, observed with Node v20), every certificate of the chain
// is checked, the trust anchor against its own CRL too, each against the
// CRL of its issuer; a CA in the chain with no CRL fails the chain with
// UNABLE_TO_GET_CRL; when several certificates fail, the code is that of
// the one nearest the root. Options.LeafOnly checks the client's
// certificate alone. It fails closed, as Node does: an issuer whose CRL was
// never obtained gives UNABLE_TO_GET_CRL after at most FirstWait (2 s) of
// the first check that needs it; a CRL held past its nextUpdate gives
// CRL_HAS_EXPIRED. Options.FailOpen lets such chains pass (a revoked
// certificate never does) and Options.Grace keeps a CRL in use for a while
// past its nextUpdate.
//
// crypto/x509 ends a chain at any certificate of ClientCAs: with an
// intermediate CA listed there (as in a Node ca bundle), at that
// intermediate. Node builds the chain on to the self-signed root and
// checks the intermediate against the root's CRL; so does the Fetcher,
// which does not see ClientCAs, when the intermediate's issuer is the
// Issuer of one of Options.Sources: give the root's CRL as a Source (a
// file, or the URL the intermediate's distribution point names, which
// then shares its fetch). Otherwise the intermediate's revocation cannot
// be known, and the chain fails with UNABLE_TO_GET_CRL for the
// intermediate, as Node refuses a chain that does not reach a
// self-signed root; a client that sends its intermediate is judged on
// the whole chain to the root, which crypto/x509 then also builds.
// LeafOnly and FailOpen apply as above.
//
// # What is supported
//
// Complete CRLs, v1 and v2, partitioned or not by an issuing distribution
// point: a partition covers only the certificates whose distribution
// point it names, or only end-entity or CA certificates, so a partition of
// a sharded CRL never clears a certificate outside it. Refused, so that a
// certificate they would speak for gets UNABLE_TO_GET_CRL: delta CRLs
// (which Node would take for complete ones), indirect CRLs and CRLs signed
// by a key other than the issuer's, CRLs partitioned by reason. A complete
// CRL that points to deltas (freshestCRL) is used as the complete CRL it
// is. An entry with reason removeFromCRL does not revoke, as in OpenSSL;
// certificateHold does.
//
// # Hostile hosts
//
// A CRL host the Fetcher does not trust can delay the first check of an
// issuer by at most FirstWait, and nothing else: it cannot make a revoked
// certificate pass (what it serves is verified, and never replaces a newer
// CRL), exhaust memory (MaxSize, compressed or not), hold a fetch forever
// (FetchTimeout), or send the Fetcher elsewhere (same-origin redirects;
// RefuseInternalAddresses for internal addresses).
//
// Everything the Fetcher calls that is not its own is contained: a
// panicking OnEvent, Logger, Store or HTTP transport costs at most the
// fetch it happened in. It is silent without a Logger; everything that
// matters is an Event (Options.OnEvent); [Fetcher.CRLs] tells what each
// CRL source holds and what went wrong last; Options.MeterProvider
// receives OpenTelemetry metrics (docs/metrics.md).
package crlfetch
