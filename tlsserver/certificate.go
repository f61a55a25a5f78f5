package tlsserver

import (
	"crypto/tls"
	"slices"
)

// TLS extension types read from the ClientHello.
const (
	extStatusRequest = 5
	extEMS           = 23 // extended_master_secret
	extSessionTicket = 35
)

// handshakeState is what the handshake goroutine learns about a
// connection, from its ClientHello to its certificate and session.
type handshakeState struct {
	hello     *tls.ClientHelloInfo
	cfg       *tls.Config // the connection's own clone, or nil
	vers      uint16      // the version crypto/tls negotiates
	statusReq bool
	deferOCSP bool             // TLS 1.2: emit from UnwrapSession, once resumption is decided
	named     *namedContext    // the AddContext context of the server name, when matched early
	matched   bool             // named is set (getConfigForClient matched the name)
	entry     *certEntry       // the certificate selected
	cert      *tls.Certificate // the certificate served: a copy when it may be stapled
	resumed   *sessionRecord   // TLS 1.2: the session handed to crypto/tls to resume
	predicted bool             // that session was checked against crypto/tls's rules
}

// getConfigForClient records what the ClientHello says and gives the
// connection its own tls.Config only when a per-connection hook needs one:
// a key log, the session store, or TLS 1.2 tickets (whose sessions record
// the extended master secret, known only here, and whose 'OCSPRequest'
// waits for the resumption decision); client certificates of a server
// name whose AddContext context has its own CA and CRLs; or, for a client
// with no ALPN protocol in common, one that refuses it.
func (s *Server) getConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	c, ok := hello.Conn.(*serverConn)
	if !ok {
		return nil, nil
	}
	base := c.sc.config
	h := &c.hs
	h.hello = hello
	h.statusReq = slices.Contains(hello.Extensions, extStatusRequest)
	h.vers = mutualVersion(base, hello.SupportedVersions)
	var own *clientVerifier // the name's context verifies its clients itself
	if base.ClientAuth != tls.NoClientCert {
		c.verifier = c.sc.verifier
		if s.sni == nil && hello.ServerName != "" {
			h.named, h.matched = s.matchContext(hello.ServerName), true
			if h.named != nil && h.named.verifier != nil {
				own = h.named.verifier
				c.verifier = own
			}
		}
	}
	if noProtocolInCommon(base.NextProtos, hello.SupportedProtos) {
		return refuseALPN(base), nil
	}
	tls12Tickets := h.vers != tls.VersionTLS13 && !base.SessionTicketsDisabled
	h.deferOCSP = tls12Tickets && c.ocsp.Len() > 0 && h.statusReq
	ticket := tls12Tickets && slices.Contains(hello.Extensions, extSessionTicket)
	if !c.keylog && !c.store && !h.deferOCSP && !ticket && own == nil {
		return nil, nil
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	if own != nil {
		// crypto/tls verifies against these roots, refuses to resume a
		// session whose chain they do not anchor, and the hook checks
		// this context's CRLs before the Config's own hook.
		cfg.ClientCAs = own.roots
		cfg.VerifyConnection = own.hook(base, c.sc.verify)
	}
	if c.keylog {
		cfg.KeyLogWriter = &keylogWriter{c: c, next: base.KeyLogWriter}
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		return s.wrapSession(c, c.sc, cfg, cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		return s.unwrapSession(c, c.sc, cfg, identity, cs)
	}
	h.cfg = cfg
	return cfg, nil
}

// noProtocolInCommon reports whether server and client both offer ALPN
// protocols and share none, which Node refuses.
func noProtocolInCommon(server, client []string) bool {
	if len(server) == 0 || len(client) == 0 {
		return false
	}
	for _, p := range client {
		if slices.Contains(server, p) {
			return false
		}
	}
	return true
}

// refuseALPN returns a config with which crypto/tls refuses the client with
// a no_application_protocol alert, as Node does. crypto/tls refuses a
// client with no protocol in common, except an "http/1.1" client of an
// "h2" server, which it lets in without a protocol (go.dev/issue/46310).
// The only protocol of the returned config is the empty name, which no
// client can offer (RFC 7301), so that exception cannot apply.
func refuseALPN(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	cfg.NextProtos = []string{""}
	return cfg
}

// mutualVersion predicts the version crypto/tls negotiates: the highest
// the server supports that the client offers.
func mutualVersion(cfg *tls.Config, client []uint16) uint16 {
	lo, hi := cfg.MinVersion, cfg.MaxVersion
	if lo == 0 {
		lo = tls.VersionTLS12
	}
	if hi == 0 {
		hi = tls.VersionTLS13
	}
	for v := hi; v >= lo; v-- {
		if slices.Contains(client, v) {
			return v
		}
	}
	return 0
}

// getCertificate is Node's certificate callback: crypto/tls calls it on
// full handshakes only (in TLS 1.3; in TLS 1.2 also before a resumption,
// hence deferOCSP). It selects the certificate and runs 'OCSPRequest'.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, ok := hello.Conn.(*serverConn)
	if !ok {
		return nil, errNoCertificate
	}
	e, err := c.selectCert(hello)
	if err != nil {
		return nil, c.destroy(err)
	}
	h := &c.hs
	h.entry, h.cert = e, e.cert
	if c.ocsp.Len() == 0 || !h.statusReq {
		return e.cert, nil
	}
	cp := new(tls.Certificate) // the staple goes on this connection's copy only
	*cp = *e.cert
	cp.OCSPStaple = nil
	h.cert = cp
	if h.deferOCSP {
		return cp, nil
	}
	if err := c.runOCSP(); err != nil {
		return nil, err
	}
	return cp, nil
}

// selectCert chooses the certificate: SNICallback's, else the newest
// AddContext context matching the server name, else the default context's.
// Among a context's certificates, the first the client supports wins.
func (c *serverConn) selectCert(hello *tls.ClientHelloInfo) (*certEntry, error) {
	s := c.s
	certs := c.sc.certs
	name := hello.ServerName
	if s.sni != nil && name != "" {
		cert, err := c.callSNI(name)
		if err != nil {
			return nil, err
		}
		if cert != nil {
			if len(cert.Certificate) == 0 {
				return nil, errNoCertificate
			}
			return &certEntry{cert: cert, issuer: findIssuer(cert, c.sc.ca)}, nil
		}
	} else if name != "" {
		nc := c.hs.named
		if !c.hs.matched {
			nc = s.matchContext(name)
		}
		if nc != nil {
			certs = nc.certs
		}
	}
	switch len(certs) {
	case 0:
		return nil, errNoCertificate
	case 1:
		return certs[0], nil
	}
	for _, e := range certs {
		if hello.SupportsCertificate(e.cert) == nil {
			return e, nil
		}
	}
	return certs[0], nil
}

func (c *serverConn) callSNI(name string) (cert *tls.Certificate, err error) {
	c.calls.Add(1)
	defer func() {
		c.calls.Add(-1)
		if v := recover(); v != nil {
			err = panicError("SNICallback", v)
		}
	}()
	return c.s.sni(c.sniCtx, name)
}
