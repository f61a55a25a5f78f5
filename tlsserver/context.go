package tlsserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tlsemit/tlsemit/internal/crl"
)

// SecureContext is what Node's tls.createSecureContext takes, and so what
// setSecureContext and addContext take: the certificates (Node's key/cert,
// or pfx decoded: see docs/porting-from-node.md), the CA, the CRLs, and
// the tls.Config carrying the rest (ciphers, versions, ALPN, client
// certificates…).
type SecureContext struct {
	// Certificates are served; when several are given, the first one the
	// client supports. For the default context, when empty,
	// Config.Certificates is used.
	Certificates []tls.Certificate
	// CA is Node's ca: where the issuer given to 'OCSPRequest' is looked up
	// when the served chain lacks it, and the roots for client
	// certificates: for the default context unless Config.ClientCAs is
	// set, and for an AddContext context, its names' (as in Node, whose
	// SNI context verifies its clients with its own ca and crl; a context
	// without CA uses the default context's CA and CRL).
	CA []*x509.Certificate
	// CRL is Node's crl: certificate revocation lists, each DER or PEM (a
	// PEM entry may hold several "X509 CRL" blocks). When given, client
	// certificates verified against CA are checked against them as Node
	// checks them: every certificate of the chain, the root too, against
	// its issuer's CRL (an intermediate of CA against its root's, found in
	// CA, even when the client did not send it; without its root in CA,
	// UNABLE_TO_GET_CRL, as Node). A revoked certificate is refused (Code
	// CERT_REVOKED), and so are those whose issuer's CRL is past its
	// nextUpdate (CRL_HAS_EXPIRED) or before its thisUpdate
	// (CRL_NOT_YET_VALID), and those of a CA without a CRL among them
	// (UNABLE_TO_GET_CRL): in the handshake with Config.ClientAuth
	// tls.RequireAndVerifyClientCert (Node's rejectUnauthorized: true) or
	// tls.VerifyClientCertIfGiven, else in Authorized. Each CRL is verified
	// when set, against the certificate of CA that issued it (an
	// intermediate CA's CRL needs that intermediate in CA): one that
	// verifies against none is an error (errors.Is crlfetch.ErrNoIssuer,
	// or crlfetch.ErrSignature for a bad signature), and so is one that is
	// malformed or of a kind not supported (crlfetch.ErrMalformed,
	// crlfetch.ErrUnsupported: delta and indirect CRLs). The bytes are
	// not kept: a DER CRL is copied.
	CRL [][]byte
	// Config is the default context's tls.Config (cloned; its
	// GetCertificate, GetConfigForClient and NameToCertificate are
	// ignored). AddContext takes none: as in Node, a name's context
	// changes the certificate, and the default context's settings apply.
	Config *tls.Config
}

// secureContext is one generation of the default context. A connection
// takes the current one when its handshake begins and keeps it: what
// 'OCSPRequest' reports is what is served.
type secureContext struct {
	config   *tls.Config // shared; per-connection clones only when needed
	certs    []*certEntry
	ca       []*x509.Certificate
	verifier *clientVerifier                                              // client certificates: ClientCAs and the CRLs
	verify   func(tls.ConnectionState) error                              // the Config's own VerifyConnection
	wrap     func(tls.ConnectionState, *tls.SessionState) ([]byte, error) // the Config's own
	unwrap   func([]byte, tls.ConnectionState) (*tls.SessionState, error) // the Config's own
}

// certEntry is a certificate with its issuer's DER, looked up once.
type certEntry struct {
	cert   *tls.Certificate
	issuer []byte
}

// namedContext is an AddContext context.
type namedContext struct {
	re       *regexp.Regexp
	certs    []*certEntry
	verifier *clientVerifier // its CA and CRLs; nil when it has no CA: the default context's apply
}

var errNoCertificate = errors.New("tlsserver: no certificate configured")

func (s *Server) newSecureContext(ctx SecureContext) (*secureContext, error) {
	var cfg *tls.Config
	if ctx.Config != nil {
		cfg = ctx.Config.Clone()
	} else {
		cfg = &tls.Config{}
	}
	certs := ctx.Certificates
	if len(certs) == 0 {
		certs = cfg.Certificates
	}
	if s.hs != nil && len(cfg.NextProtos) == 0 {
		cfg.NextProtos = httpProtocols(s.hs) // Options.HTTP's
	}
	entries, err := certEntries(certs, ctx.CA)
	if err != nil {
		return nil, err
	}
	crls, err := loadCRLs(ctx.CRL, ctx.CA)
	if err != nil {
		return nil, err
	}
	sc := &secureContext{config: cfg, certs: entries, ca: append([]*x509.Certificate(nil), ctx.CA...)}
	cfg.Certificates = nil
	cfg.NameToCertificate = nil //nolint:staticcheck // cleared on purpose
	cfg.GetCertificate = s.getCertificate
	cfg.GetConfigForClient = s.getConfigForClient
	sc.wrap, sc.unwrap = cfg.WrapSession, cfg.UnwrapSession
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		return s.wrapSession(nil, sc, cfg, cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		return s.unwrapSession(nil, sc, cfg, identity, cs)
	}
	if cfg.ClientCAs == nil && len(sc.ca) > 0 {
		cfg.ClientCAs = certPool(sc.ca)
	}
	sc.verifier = newClientVerifier(cfg.ClientCAs, crls, sc.ca)
	sc.verify = cfg.VerifyConnection
	cfg.VerifyConnection = sc.verifier.hook(cfg, sc.verify)
	return sc, nil
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// certEntries copies certs (the caller's slice may change) and looks up
// each one's issuer.
func certEntries(certs []tls.Certificate, ca []*x509.Certificate) ([]*certEntry, error) {
	var entries []*certEntry
	for i := range certs {
		c := certs[i]
		if len(c.Certificate) == 0 {
			return nil, errors.New("tlsserver: certificate without DER")
		}
		entries = append(entries, &certEntry{cert: &c, issuer: findIssuer(&c, ca)})
	}
	return entries, nil
}

// findIssuer returns the DER of the certificate that issued cert's leaf:
// from the served chain, else from ca, else nil. A match is by name, and by
// key identifier when both certificates carry one (OpenSSL's
// X509_check_issued, which Node relies on).
func findIssuer(cert *tls.Certificate, ca []*x509.Certificate) []byte {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil
		}
	}
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err == nil && issued(c, leaf) {
			return der
		}
	}
	for _, c := range ca {
		if issued(c, leaf) {
			return c.Raw
		}
	}
	return nil
}

func issued(ca, leaf *x509.Certificate) bool {
	if !bytes.Equal(ca.RawSubject, leaf.RawIssuer) {
		return false
	}
	if len(leaf.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 {
		return bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	return true
}

// AddContext serves ctx's certificates to clients whose server name
// matches hostname, as Node's addContext: '*' matches within one label
// ("*.example.com" matches "a.example.com", not "a.b.example.com"),
// case-insensitively, and the most recently added matching context wins.
// The issuer given to 'OCSPRequest' is looked up in the served chain, else
// in ctx.CA (a context made without one has none, as in Node). ctx.Config
// must be nil: the default context's Config applies to every name.
//
// Client certificates of those names (Config.ClientAuth) are verified as
// Node verifies them in an SNI context: against ctx.CA and ctx.CRL, when
// ctx has a CA. A context without CA uses the default context's (Node
// would verify against its bundled public roots, refusing the clients of
// a private CA); its CRL needs a CA, so ctx.CRL without ctx.CA is an
// error, as is a CRL that does not verify against ctx.CA.
func (s *Server) AddContext(hostname string, ctx SecureContext) error {
	if hostname == "" {
		return errors.New("tlsserver: AddContext: empty hostname")
	}
	if len(ctx.Certificates) == 0 {
		return errors.New("tlsserver: AddContext: no certificate")
	}
	if ctx.Config != nil {
		return errors.New("tlsserver: AddContext: a name's context takes no Config; set it on the default context (Options.Config, SetSecureContext)")
	}
	re, err := regexp.Compile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(hostname), `\*`, `[^.]*`) + "$")
	if err != nil {
		return err
	}
	entries, err := certEntries(ctx.Certificates, ctx.CA)
	if err != nil {
		return err
	}
	if len(ctx.CRL) > 0 && len(ctx.CA) == 0 {
		return fmt.Errorf("tlsserver: AddContext: a CRL needs the context's CA, which verifies it and its clients: %w", crl.ErrNoIssuer)
	}
	nc := &namedContext{re: re, certs: entries}
	if len(ctx.CA) > 0 {
		crls, err := loadCRLs(ctx.CRL, ctx.CA)
		if err != nil {
			return err
		}
		nc.verifier = newClientVerifier(certPool(ctx.CA), crls, ctx.CA)
	}
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	var next []*namedContext
	if old := s.contexts.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, nc)
	s.contexts.Store(&next)
	return nil
}

// matchContext returns the newest AddContext context matching name, or nil.
func (s *Server) matchContext(name string) *namedContext {
	if list := s.contexts.Load(); list != nil {
		for i := len(*list) - 1; i >= 0; i-- {
			if nc := (*list)[i]; nc.re.MatchString(name) {
				return nc
			}
		}
	}
	return nil
}

// SetSecureContext replaces the default context (Node's setSecureContext)
// for connections whose handshake begins afterwards. Connections already
// handshaking keep the context they began with, and 'OCSPRequest' always
// reports the certificate actually served (Node can report the new one
// while serving the old). The ticket keys carry over.
func (s *Server) SetSecureContext(ctx SecureContext) error {
	sc, err := s.newSecureContext(ctx)
	if err != nil {
		return err
	}
	s.storeContext(sc)
	return nil
}

// storeContext installs sc with the current ticket keys.
func (s *Server) storeContext(sc *secureContext) {
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	sc.config.SetSessionTicketKeys(s.tickets.Load().keys)
	s.sc.Store(sc)
}
