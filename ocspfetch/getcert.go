package ocspfetch

import (
	"crypto/tls"
	"slices"
)

// GetCertificate wraps get, a crypto/tls Config.GetCertificate (certmagic's
// or autocert's, or a function returning a certificate of your own), so
// that a server on plain crypto/tls (net/http's ListenAndServeTLS, say)
// staples what the Fetcher holds, as a tlsserver with OCSPRequest does:
//
//	cfg.GetCertificate = f.GetCertificate(m.GetCertificate)
//
// For a client whose ClientHello asks for the certificate's status
// (status_request), it answers as OCSPRequest does, for the leaf
// Certificate[0] and its issuer Certificate[1] (without one, the caIssuers
// URL is used): at once from memory, or after waiting at most
// HandshakeBudget (or until the handshake's context ends) for the fetch
// that every concurrent handshake shares. The staple goes on a copy of the
// certificate made for this connection: the one get returned is never
// written to. A client that does not ask gets the certificate as get
// returned it, and costs the Fetcher nothing. A certificate that get
// returns with a staple of its own keeps it when the Fetcher has none.
// With FailClosed, a handshake that asks for the status of a certificate
// with a responder but no valid staple fails with the Fetcher's error.
//
// crypto/tls calls GetCertificate on full handshakes only, so resumed
// sessions are not stapled, as in a tlsserver.
func (f *Fetcher) GetCertificate(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := get(hello)
		if err != nil || cert == nil || len(cert.Certificate) == 0 || !slices.Contains(hello.Extensions, statusRequest) {
			return cert, err
		}
		var issuer []byte
		if len(cert.Certificate) > 1 {
			issuer = cert.Certificate[1]
		}
		var gone <-chan struct{}
		if ctx := hello.Context(); ctx != nil {
			gone = ctx.Done()
		}
		var staple []byte
		var failed error
		cb := func(err error, resp []byte) { failed, staple = err, resp }
		f.request(gone, cert.Certificate[0], issuer, cb) // calls cb before it returns
		switch {
		case failed != nil:
			return nil, failed
		case staple == nil:
			return cert, nil
		}
		cp := *cert // this connection's copy
		cp.OCSPStaple = staple
		return &cp, nil
	}
}
