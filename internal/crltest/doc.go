// Package crltest holds what tests of CRL checking share: large CRLs made
// in Go and cached on disk (LargeCRL), CRLs made by the real `openssl ca
// -gencrl` (OpenSSLCA), and an HTTP server that serves CRLs well or in a
// hostile way (Server).
package crltest
