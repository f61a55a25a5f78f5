// Package e2e holds end-to-end tests of tlsemit as a whole: tlsserver and
// ocspfetch together against the real `openssl ocsp` responder (run by
// internal/ocsptest in a private network namespace), checked by validating
// clients nobody here wrote (curl --cert-status, openssl s_client -status)
// and by a Go client that verifies every staple against the certificate it
// was served with.
//
// The package has no code of its own; its tests are the proof of issue 4
// (curl accepts the staple, rejects a revoked one, s_client shows it) and
// the "no staple ever crosses certificates" check of issue 6 (two SNI
// names, two CAs, two responders, and a responder that swaps answers).
//
// With CI=true a missing openssl, curl or namespace support fails the tests
// instead of skipping them.
package e2e
