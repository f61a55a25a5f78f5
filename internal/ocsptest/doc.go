// Package ocsptest runs the real `openssl ocsp` responder as a test peer.
//
// The OpenSSL 3.0 responder has three traps, each handled here:
//
//   - It binds every interface and has no host option. Start runs it in a
//     private network namespace (`unshare -rn`, with lo brought up inside),
//     so nothing outside the test can reach it. Go code reaches it through
//     Responder.Client, whose dialer creates its sockets inside that
//     namespace (setns on a locked OS thread). The certificate's AIA URL
//     still says http://127.0.0.1:P/. Where unshare is refused, Start falls
//     back to plain loopback and says so in the test log.
//   - A bare TCP connect-and-close wedges the single-process responder for
//     good, and one idle connection blocks everyone else. Readiness is read
//     from the responder's own /proc/PID/net/tcp{,6} listen table (what
//     `ss -Hltn` prints for that namespace), never by dialing, and Client
//     never keeps a connection alive.
//   - It reads index.txt once. Revoke rewrites the index and restarts it.
//
// With CI=true a missing openssl or unshare is a test failure with a clear
// message; elsewhere the test is skipped.
package ocsptest
