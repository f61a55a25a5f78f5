// Package crl parses, indexes, verifies and applies certificate revocation
// lists (RFC 5280 section 5) fast enough for CRLs of millions of entries:
// crlfetch uses it for the CRLs it fetches, tlsserver for Node's static
// crl option.
//
// Parse scans the DER in place with cryptobyte and hashes each entry's
// serial (its INTEGER content octets, no big.Int) into an open-addressing
// table that points back into the DER: a 1,000,000-entry CRL (34 MB) is
// held in its DER plus 13 MB, and Revoked looks a serial up without
// allocating. Load also verifies the signature (crypto/x509's
// CheckSignature over the signed bytes, with the issuer's key) before it
// indexes anything. Decode takes DER or PEM.
//
// What is supported, and what is refused (ErrUnsupported), follows what
// Node (OpenSSL 3.0 without X509_V_FLAG_EXTENDED_CRL_SUPPORT or
// X509_V_FLAG_USE_DELTAS) can use, refused where Node would silently
// misuse it:
//
//   - complete CRLs signed by the certificate's issuer itself (same name
//     and key), which must have the cRLSign key usage when it has key
//     usages; v1 and v2 CRLs;
//   - issuing distribution points: a CRL partitioned by distribution point
//     name, or for end-entity or CA certificates only, covers only those
//     (Covers); partitioned by reason, indirect, or for attribute
//     certificates, refused;
//   - delta CRLs refused (Node would take one for a complete CRL); a
//     complete CRL pointing to deltas (freshestCRL) is used as complete;
//   - indirect CRLs and entries naming another certificate issuer refused,
//     and with them CRLs signed by a separate CRL-signing key;
//   - unknown critical CRL and entry extensions refused;
//   - an entry whose reason is removeFromCRL is not a revocation; every
//     other reason (certificateHold included) is.
//
// Policy.Check applies CRLs to a verified chain as Node's tls.Server with
// crl does (every certificate of the chain, the trust anchor too, and on
// from an intermediate that crypto/x509 made the anchor to its root
// through Anchors; Node's codes through Code), Policy.Usable holds a CRL
// to its thisUpdate (with a clock skew) and nextUpdate (with a grace
// period).
package crl
