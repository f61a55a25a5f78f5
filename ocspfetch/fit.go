package ocspfetch

// A staple travels inside the handshake: in TLS 1.2 as its own
// CertificateStatus message, in TLS 1.3 as an extension of the leaf's
// CertificateEntry within the Certificate message, beside the whole chain.
// A staple too large for either breaks every handshake that asks for
// status, so the Fetcher refuses it (ErrResponseTooLarge) before it is
// cached or stapled.
const (
	// maxHandshakeMessage is the smallest limit common clients put on one
	// handshake message: Go's for TLS 1.2's CertificateStatus and, over
	// QUIC, for every message (OpenSSL allows a 100 KiB certificate list,
	// Go 256 KiB over TCP).
	maxHandshakeMessage = 1 << 16

	// chainReserve is room kept in the Certificate message for what the
	// Fetcher does not see of the served chain: it knows the leaf and its
	// issuer, not a further intermediate or signed certificate timestamps.
	chainReserve = 8 << 10
)

// maxStapleSize is the largest staple that fits in TLS 1.2 and TLS 1.3
// beside a chain of a leaf of leaf bytes, an issuer of issuer bytes and
// chainReserve bytes more.
func maxStapleSize(leaf, issuer int) int {
	// Certificate message: context (1), list length (3), the leaf's entry
	// (length 3, extensions length 2, status_request: type 2, length 2,
	// status_type 1, response length 3), the issuer's entry (3 + 2).
	tls13 := maxHandshakeMessage - (1 + 3 + 3 + leaf + 2 + 8 + 3 + issuer + 2) - chainReserve
	// The CertificateEntry's extensions have a 2-byte length.
	entry := 0xffff - 8
	// CertificateStatus: status_type (1), response length (3).
	tls12 := maxHandshakeMessage - 4
	return min(tls13, entry, tls12)
}
