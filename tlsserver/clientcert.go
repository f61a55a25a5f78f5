package tlsserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
)

// Client certificates: Node's requestCert, rejectUnauthorized, ca and crl,
// and the socket's authorized and authorizationError.
//
// Node's requestCert is Config.ClientAuth other than tls.NoClientCert; its
// rejectUnauthorized is whether crypto/tls refuses a certificate that does
// not verify (tls.VerifyClientCertIfGiven, tls.RequireAndVerifyClientCert).
// With those two, the CRLs are checked in the handshake, in
// Config.VerifyConnection, and a refusal carries Node's code. With
// tls.RequestClientCert or tls.RequireAnyClientCert (rejectUnauthorized:
// false) crypto/tls verifies nothing and refuses nothing, and Authorized
// verifies the certificate the client sent when it is first asked, as of
// the handshake's time.

// clientVerifier is how a context verifies client certificates: the roots
// (Config.ClientCAs, or a pool of CA) and the CRLs, if any.
type clientVerifier struct {
	roots *x509.CertPool
	ca    []*x509.Certificate // the context's CA: Node's trusted certificates, whose issuers it builds chains from
	crls  *crl.Set            // nil: no CRL given, revocation is not checked
	// policy is Node's check, with the way up from an intermediate of CA
	// to its root: crypto/x509 ends a chain at any certificate of the
	// pool, Node goes on to the root and checks the intermediate too.
	policy crl.Policy
}

func newClientVerifier(roots *x509.CertPool, crls *crl.Set, ca []*x509.Certificate) *clientVerifier {
	v := &clientVerifier{roots: roots, crls: crls, ca: ca}
	if crls != nil {
		v.policy.Anchors = crl.NewAnchors(ca)
	}
	return v
}

// loadCRLs decodes and verifies a context's crl, each CRL against the
// certificate of ca that issued it. It returns nil for none.
func loadCRLs(blobs [][]byte, ca []*x509.Certificate) (*crl.Set, error) {
	if len(blobs) == 0 {
		return nil, nil
	}
	own := make([][]byte, len(blobs))
	for i, b := range blobs {
		if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == 0x30 {
			b = bytes.Clone(b) // a DER CRL is indexed in place: the caller's slice may change
		}
		own[i] = b
	}
	set, err := crl.LoadSet(own, ca)
	switch {
	case errors.Is(err, crl.ErrNoIssuer):
		return nil, fmt.Errorf("tlsserver: CRL: its issuer must be in CA, which verifies it: %w", err)
	case err != nil:
		return nil, fmt.Errorf("tlsserver: CRL: %w", err)
	}
	return set, nil
}

// hook returns the Config.VerifyConnection of a context whose clients are
// refused when their certificate does not verify: the CRL check, then
// user, the Config's own hook, if any. It is nil when there is nothing to
// check: no work at all per handshake.
func (v *clientVerifier) hook(cfg *tls.Config, user func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	if v.crls == nil || cfg.ClientAuth < tls.VerifyClientCertIfGiven {
		return user
	}
	clock := cfg.Time
	return func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) > 0 { // none: a client of VerifyClientCertIfGiven that sent no certificate
			t := time.Now()
			if clock != nil {
				t = clock()
			}
			if err := v.checkCRL(cs.VerifiedChains, t); err != nil {
				return err
			}
		}
		if user != nil {
			return user(cs)
		}
		return nil
	}
}

// checkCRL checks verified chains against the CRLs as Node does, and
// returns nil when one of them passes. A passing chain costs no
// allocation.
func (v *clientVerifier) checkCRL(chains [][]*x509.Certificate, t time.Time) error {
	err := v.policy.CheckChains(chains, t, v.crls.Find)
	if err == nil {
		return nil
	}
	return &Error{Code: crl.Code(err), Msg: "client certificate failed the CRL check", Err: err}
}

func selfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, c.RawSubject) }

// verify is what Node does with a client certificate before it decides on
// rejectUnauthorized: the chain the client sent verified against the
// roots at t, then checked against the CRLs. The errors are those the
// handshake refuses with in the modes that refuse.
func (v *clientVerifier) verify(certs []*x509.Certificate, t time.Time) error {
	opts := x509.VerifyOptions{
		Roots:         v.roots,
		CurrentTime:   t,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return classify(&tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}, t, v)
	}
	if v.crls == nil {
		return nil
	}
	return v.checkCRL(chains, t)
}

// crlAfterVerify returns the error Node reports for a client certificate
// that does not verify (err, Node's code for it code) when CRLs are given
// and the chain Node builds fails them: OpenSSL goes on checking a chain
// that failed to verify, and reports the last failure it meets. It builds
// the chain from the trusted certificates and those the client sent
// (failures of that: the unknown-issuer codes), checks its extensions
// (INVALID_PURPOSE), then revocation, then times and signatures
// (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID). So a CRL failure replaces the
// first kind, not the last; a certificate whose issuer was not found is
// not checked. It returns nil when the CRL failure does not apply.
func (v *clientVerifier) crlAfterVerify(err error, code string, t time.Time) error {
	if v == nil || v.crls == nil {
		return nil
	}
	switch code {
	case "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN",
		"DEPTH_ZERO_SELF_SIGNED_CERT", "INVALID_PURPOSE":
	default:
		return nil
	}
	var ve *tls.CertificateVerificationError
	if !errors.As(err, &ve) || len(ve.UnverifiedCertificates) == 0 {
		return nil
	}
	crlErr := v.policy.CheckUnverified(v.nodeChain(ve.UnverifiedCertificates), t, v.crls.Find)
	if crlErr == nil {
		return nil
	}
	return &Error{Code: crl.Code(crlErr), Msg: "client certificate did not verify, and failed the CRL check", Err: errors.Join(crlErr, err)}
}

// nodeChain builds the chain OpenSSL builds for certs (the client's, leaf
// first): each certificate's issuer is looked up among the CA, then among
// certs, up to a self-issued one or one whose issuer is not found.
func (v *clientVerifier) nodeChain(certs []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{certs[0]}
	for cur := certs[0]; !selfIssued(cur) && len(chain) <= len(v.ca)+len(certs); {
		var next *x509.Certificate
		for _, pool := range [][]*x509.Certificate{v.ca, certs[1:]} {
			for _, c := range pool {
				if c != cur && issued(c, cur) {
					next = c
					break
				}
			}
			if next != nil {
				break
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

// errNoClientCertificate is Authorized's error for a client that sent no
// certificate: Node's authorizationError then is UNABLE_TO_GET_ISSUER_CERT.
var errNoClientCertificate = &Error{Code: "UNABLE_TO_GET_ISSUER_CERT", Msg: "client sent no certificate", Err: ErrPeerDidNotReturnACertificate}

// ErrNotEstablished: Authorized was given a connection that is not one a
// Server established (another server's, one whose handshake has not
// completed), or RequestAuthorized a request that did not come through
// Options.HTTP.
var ErrNotEstablished = errors.New("tlsserver: not a connection established by a tlsserver.Server")

// Authorized is Node's tlsSocket.authorized and authorizationError, for c,
// a connection the server established: the *tls.Conn of
// 'secureConnection', or of Listener's Accept. ok is true when the client
// sent a certificate that verifies against the CA (Options.CA or
// Config.ClientCAs; an AddContext context's own CA for its names) and,
// when CRLs are given, passes them, as Node checks it. Otherwise err says
// why, with Node's authorizationError as its Code: CERT_REVOKED,
// CRL_HAS_EXPIRED, UNABLE_TO_GET_CRL, CRL_NOT_YET_VALID,
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, …, and
// UNABLE_TO_GET_ISSUER_CERT for a client that sent none (wrapping
// ErrPeerDidNotReturnACertificate). errors.Is finds crlfetch's sentinels
// (crlfetch.ErrRevoked, …) in a CRL failure and errors.As a
// *tls.CertificateVerificationError in a verification failure.
//
// With Config.ClientAuth tls.NoClientCert (Node's requestCert: false) it
// returns false and a nil error, as Node's authorized false with a null
// authorizationError. With tls.RequestClientCert (Node's requestCert: true,
// rejectUnauthorized: false) or tls.RequireAnyClientCert, nothing was
// refused for its certificate, and the first call verifies it, as of the
// handshake's time (later calls return the same). With
// tls.RequireAndVerifyClientCert (rejectUnauthorized: true) or
// tls.VerifyClientCertIfGiven, a client whose certificate failed never got
// here: it is true, or, for a VerifyClientCertIfGiven client without
// certificate, false.
//
// A connection that is not one the server established gives
// ErrNotEstablished.
func Authorized(c *tls.Conn) (ok bool, err error) {
	if c == nil {
		return false, ErrNotEstablished
	}
	sc, isOurs := c.NetConn().(*serverConn)
	if !isOurs {
		return false, ErrNotEstablished
	}
	return sc.authorized()
}

// RequestAuthorized is Authorized for the connection r came on: Node's
// req.socket.authorized and authorizationError in an https server's
// request listener. It works for the requests of Options.HTTP; with your
// own http.Server on Listener, call Authorized in its ConnContext.
func RequestAuthorized(r *http.Request) (ok bool, err error) {
	sc, isOurs := r.Context().Value(connKey{}).(*serverConn)
	if !isOurs {
		return false, ErrNotEstablished
	}
	return sc.authorized()
}

func (c *serverConn) authorized() (bool, error) {
	if c.tls == nil {
		return false, ErrNotEstablished
	}
	st := c.tls.ConnectionState()
	if !st.HandshakeComplete {
		return false, ErrNotEstablished
	}
	switch mode := c.sc.config.ClientAuth; {
	case mode == tls.NoClientCert:
		return false, nil
	case len(st.PeerCertificates) == 0:
		return false, errNoClientCertificate
	case mode >= tls.VerifyClientCertIfGiven:
		return len(st.VerifiedChains) > 0, nil // the handshake verified it, and checked the CRLs
	}
	c.authOnce.Do(func() {
		v := c.verifier
		if v == nil {
			v = c.sc.verifier
		}
		c.authErr = v.verify(st.PeerCertificates, c.authAt)
	})
	return c.authErr == nil, c.authErr
}
