package tlsserver

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"regexp"
	"strings"
)

// secureContext is one generation of the default context (Options'
// Certificates, CA and Config). A connection takes the current one when its
// handshake begins and keeps it: what 'OCSPRequest' reports is what is
// served.
type secureContext struct {
	config *tls.Config // shared; per-connection clones only when needed
	certs  []*certEntry
	ca     []*x509.Certificate
	wrap   func(tls.ConnectionState, *tls.SessionState) ([]byte, error)
	unwrap func([]byte, tls.ConnectionState) (*tls.SessionState, error)
}

// certEntry is a certificate with its issuer's DER, looked up once.
type certEntry struct {
	cert   *tls.Certificate
	issuer []byte
}

type sniContext struct {
	pattern string
	re      *regexp.Regexp
	entry   *certEntry
}

var errNoCertificate = errors.New("tlsserver: no certificate configured")

func (s *Server) newSecureContext(opts Options) (*secureContext, error) {
	var cfg *tls.Config
	if opts.Config != nil {
		cfg = opts.Config.Clone()
	} else {
		cfg = &tls.Config{}
	}
	certs := opts.Certificates
	if len(certs) == 0 {
		certs = cfg.Certificates
	}
	sc := &secureContext{config: cfg, ca: append([]*x509.Certificate(nil), opts.CA...)}
	for i := range certs {
		c := certs[i] // a private copy: the caller's slice may change
		if len(c.Certificate) == 0 {
			return nil, errors.New("tlsserver: certificate without DER")
		}
		sc.certs = append(sc.certs, &certEntry{cert: &c, issuer: findIssuer(&c, sc.ca)})
	}
	cfg.Certificates = nil
	cfg.NameToCertificate = nil //nolint:staticcheck // cleared on purpose
	cfg.GetCertificate = s.getCertificate
	cfg.GetConfigForClient = s.getConfigForClient
	sc.wrap, sc.unwrap = cfg.WrapSession, cfg.UnwrapSession
	if cfg.ClientCAs == nil && len(sc.ca) > 0 {
		pool := x509.NewCertPool()
		for _, c := range sc.ca {
			pool.AddCert(c)
		}
		cfg.ClientCAs = pool
	}
	return sc, nil
}

// ticketKey maps Node's 48-byte ticket keys (16 bytes of name, 16 of HMAC
// key, 16 of AES key) onto the 32-byte key crypto/tls takes: SHA-256 of
// the 48 bytes. Servers given the same 48 bytes share tickets; tickets are
// not interchangeable with Node's.
func ticketKey(k [48]byte) [32]byte { return sha256.Sum256(k[:]) }

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

// AddContext serves cert to clients whose server name matches hostname, as
// Node's addContext: '*' matches within one label ("*.example.com" matches
// "a.example.com", not "a.b.example.com"), case-insensitively, and the most
// recently added matching context wins. The context has no CA of its own,
// as a Node context made without `ca`: the issuer given to 'OCSPRequest' is
// looked up in cert's chain only (else nil); see AddContextWithCA.
func (s *Server) AddContext(hostname string, cert *tls.Certificate) error {
	return s.AddContextWithCA(hostname, cert, nil)
}

// AddContextWithCA is AddContext for a context with its own CA (Node's
// addContext(hostname, {key, cert, ca})): the issuer is looked up in cert's
// chain, else in ca.
func (s *Server) AddContextWithCA(hostname string, cert *tls.Certificate, ca []*x509.Certificate) error {
	if hostname == "" {
		return errors.New("tlsserver: AddContext: empty hostname")
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return errors.New("tlsserver: AddContext: no certificate")
	}
	c := *cert
	re, err := regexp.Compile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(hostname), `\*`, `[^.]*`) + "$")
	if err != nil {
		return err
	}
	ctx := &sniContext{pattern: hostname, re: re, entry: &certEntry{cert: &c, issuer: findIssuer(&c, ca)}}
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	var next []*sniContext
	if old := s.contexts.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, ctx)
	s.contexts.Store(&next)
	return nil
}

// SetSecureContext replaces the default context (opts' Certificates, CA
// and Config; its other fields are ignored) for connections whose handshake
// begins afterwards. Connections already handshaking keep the context they
// began with, and 'OCSPRequest' always reports the certificate actually
// served (Node can report the new one while serving the old).
func (s *Server) SetSecureContext(opts Options) error {
	sc, err := s.newSecureContext(opts)
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
	sc.config.SetSessionTicketKeys(s.ticketKeysLocked())
	s.sc.Store(sc)
}

func (s *Server) ticketKeysLocked() [][32]byte {
	ks := make([][32]byte, len(s.keys))
	for i, k := range s.keys {
		ks[i] = ticketKey(k)
	}
	return ks
}

// TicketKeys returns the 48 bytes of the session ticket key that encrypts,
// in Node's getTicketKeys form. It is random when the server is made, as
// in Node.
func (s *Server) TicketKeys() []byte {
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	return append([]byte(nil), s.keys[0][:]...)
}

// SetTicketKeys replaces the session ticket keys (Node's setTicketKeys):
// each key must be 48 bytes. The first encrypts new tickets; all decrypt.
// crypto/tls takes a 32-byte key; the server uses the SHA-256 of each, so
// servers given the same keys accept each other's tickets.
func (s *Server) SetTicketKeys(keys ...[]byte) error {
	if len(keys) == 0 {
		return ErrTicketKeys
	}
	ks := make([][48]byte, len(keys))
	for i, k := range keys {
		if len(k) != 48 {
			return ErrTicketKeys
		}
		copy(ks[i][:], k)
	}
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	s.keys = ks
	s.sc.Load().config.SetSessionTicketKeys(s.ticketKeysLocked())
	return nil
}
