package tlsserver

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"runtime"
	"slices"
	"time"
)

// In TLS 1.2, crypto/tls calls GetCertificate before it decides whether
// to resume, and reads the certificate's staple right after UnwrapSession
// returns, with no hook in between. So for a connection that asked for
// status, 'OCSPRequest' waits for UnwrapSession, and there the server
// decides: it hands crypto/tls a session only when crypto/tls's own rules
// accept it (checkForResumption in crypto/tls's handshake_server.go), and
// otherwise returns none and emits 'OCSPRequest' for the full handshake.
// When in doubt it returns none: a full handshake with its staple, never a
// resumption refused behind the server's back. The facts those rules need
// are recorded in SessionState.Extra when the session is issued, since the
// rest of a SessionState is opaque.

// recordMagic starts tlsemit's entry in SessionState.Extra, which other
// layers may share. Version 1 kept the creation time in whole seconds; its
// records are not read (a full handshake), and a server of that version
// does not read version 2's, so neither misreads the other's time.
const recordMagic = "tlsemit/session/2"

// sessionRecord is tlsemit's entry in SessionState.Extra.
type sessionRecord struct {
	created      int64 // Unix nanoseconds, by the server's clock (Config.Time)
	version      uint16
	suite        uint16
	emsKnown     bool // TLS 1.2 sessions issued on a connection's own config
	ems          bool // the extended master secret was used
	peerCerts    bool
	leafNotAfter int64 // the client certificate's, Unix seconds
	chains       []chainFacts
}

// chainFacts is what crypto/tls checks of a verified client chain when it
// resumes: every certificate in date, and the root still trusted.
type chainFacts struct {
	notBefore, notAfter int64 // the latest NotBefore, the earliest NotAfter
	root                []byte
}

const (
	flagEMSKnown = 1 << iota
	flagEMS
	flagPeerCerts
)

// newRecord describes the session cs is issuing a ticket for.
func newRecord(c *serverConn, cfg *tls.Config, cs tls.ConnectionState) *sessionRecord {
	r := &sessionRecord{created: now(cfg).UnixNano(), version: cs.Version, suite: cs.CipherSuite}
	if c != nil && cs.Version != tls.VersionTLS13 {
		h := &c.hs
		r.emsKnown = true
		r.ems = slices.Contains(h.hello.Extensions, extEMS) // the server always agrees to it
		if cs.DidResume && h.resumed != nil {
			r.created = h.resumed.created // crypto/tls keeps a resumed TLS 1.2 session's time
		}
	}
	if len(cs.PeerCertificates) > 0 {
		r.peerCerts = true
		r.leafNotAfter = cs.PeerCertificates[0].NotAfter.Unix()
		for _, chain := range cs.VerifiedChains {
			if len(chain) == 0 {
				continue
			}
			f := chainFacts{notBefore: chain[0].NotBefore.Unix(), notAfter: chain[0].NotAfter.Unix(), root: chain[len(chain)-1].Raw}
			for _, cert := range chain[1:] {
				f.notBefore = max(f.notBefore, cert.NotBefore.Unix())
				f.notAfter = min(f.notAfter, cert.NotAfter.Unix())
			}
			r.chains = append(r.chains, f)
		}
	}
	return r
}

func (r *sessionRecord) encode() []byte {
	b := append([]byte(recordMagic), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(r.created))
	b = binary.BigEndian.AppendUint16(b, r.version)
	b = binary.BigEndian.AppendUint16(b, r.suite)
	var flags byte
	if r.emsKnown {
		flags |= flagEMSKnown
	}
	if r.ems {
		flags |= flagEMS
	}
	if r.peerCerts {
		flags |= flagPeerCerts
	}
	b = append(b, flags)
	if !r.peerCerts {
		return b
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.leafNotAfter))
	b = append(b, byte(min(len(r.chains), 255)))
	for _, f := range r.chains[:min(len(r.chains), 255)] {
		b = binary.BigEndian.AppendUint64(b, uint64(f.notBefore))
		b = binary.BigEndian.AppendUint64(b, uint64(f.notAfter))
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.root)))
		b = append(b, f.root...)
	}
	return b
}

// findRecord returns tlsemit's record among a session's Extra entries, or
// nil when there is none or it does not parse.
func findRecord(extra [][]byte) *sessionRecord {
	for _, e := range extra {
		if rest, ok := bytes.CutPrefix(e, []byte(recordMagic+"\x00")); ok {
			return decodeRecord(rest)
		}
	}
	return nil
}

func decodeRecord(b []byte) *sessionRecord {
	d := decoder{b: b, ok: true}
	r := &sessionRecord{created: int64(d.u64()), version: d.u16(), suite: d.u16()}
	flags := d.u8()
	r.emsKnown, r.ems, r.peerCerts = flags&flagEMSKnown != 0, flags&flagEMS != 0, flags&flagPeerCerts != 0
	if r.peerCerts {
		r.leafNotAfter = int64(d.u64())
		for n := d.u8(); n > 0 && d.ok; n-- {
			f := chainFacts{notBefore: int64(d.u64()), notAfter: int64(d.u64())}
			f.root = d.bytes(int(d.u32()))
			r.chains = append(r.chains, f)
		}
	}
	if !d.ok || len(d.b) != 0 {
		return nil
	}
	return r
}

// decoder reads big-endian fields; a short read clears ok.
type decoder struct {
	b  []byte
	ok bool
}

func (d *decoder) bytes(n int) []byte {
	if !d.ok || n < 0 || n > len(d.b) {
		d.ok, d.b = false, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.bytes(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.bytes(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// expired reports whether the session, at t, is at least timeout old
// (timeout is at most maxSessionAge, under crypto/tls's own limit): a
// session resumes while its age is under the timeout, to the nanosecond.
// crypto/tls's own session time is in whole seconds, as are TLS 1.3's
// ticket lifetimes on the wire; the record's is not.
func (r *sessionRecord) expired(t time.Time, timeout time.Duration) bool {
	return t.Sub(time.Unix(0, r.created)) >= timeout
}

// canResume repeats crypto/tls's TLS 1.2 rules for resuming the session r
// describes on this connection: the version, the cipher suite (offered by
// the client, allowed by the server, fitting the served certificate's
// key), the client certificate (required or not, in date, still verifying
// against ClientCAs) and the extended master secret. Any rule it cannot
// check refuses.
func (c *serverConn) canResume(r *sessionRecord, vers uint16) bool {
	h := &c.hs
	cfg := h.cfg
	t := now(cfg).Unix()
	suite, known := tls12Suites[r.suite]
	switch {
	case vers != tls.VersionTLS12 || r.version != vers,
		!known || !slices.Contains(h.hello.CipherSuites, r.suite),
		!suite.allowed(cfg, r.suite),
		!suite.fits(h.cert, cfg, h.hello),
		!r.emsKnown || r.ems != slices.Contains(h.hello.Extensions, extEMS),
		!r.ems && fips140.Enabled():
		return false
	}
	needCerts := cfg.ClientAuth == tls.RequireAnyClientCert || cfg.ClientAuth == tls.RequireAndVerifyClientCert
	if !r.peerCerts {
		return !needCerts
	}
	if cfg.ClientAuth == tls.NoClientCert || t >= r.leafNotAfter {
		return false
	}
	return cfg.ClientAuth < tls.VerifyClientCertIfGiven || r.anyValidChain(c, cfg)
}

// anyValidChain is crypto/tls's anyValidVerifiedChain on the recorded
// facts: a chain in date whose root still verifies against ClientCAs. (On
// Windows and Darwin crypto/tls verifies the whole chain again, which the
// record does not allow: refused.)
func (r *sessionRecord) anyValidChain(c *serverConn, cfg *tls.Config) bool {
	switch runtime.GOOS {
	case "windows", "darwin", "ios":
		return false
	}
	t := now(cfg)
	for _, f := range r.chains {
		if t.Unix() < f.notBefore || t.Unix() >= f.notAfter {
			continue
		}
		root, err := x509.ParseCertificate(f.root)
		if err != nil {
			continue
		}
		opts := x509.VerifyOptions{CurrentTime: t, Roots: cfg.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if _, err := root.Verify(opts); err == nil {
			return true
		}
	}
	return false
}

// checkPrediction reports a handshake predicted to resume that crypto/tls
// made a full one: its 'OCSPRequest' was skipped and nothing stapled.
func (c *serverConn) checkPrediction(resumed bool) {
	if !c.hs.predicted || resumed {
		return
	}
	c.s.emitError(withDetail(ErrResumptionMispredicted, "client "+c.RemoteAddr().String()))
}

// suiteKind is what a TLS 1.2 cipher suite asks of the server.
type suiteKind struct {
	kex       uint8 // kexECDHEECDSA, kexECDHERSA or kexRSA
	byDefault bool  // in crypto/tls's default list
	gcm       bool  // allowed in FIPS 140 mode
}

const (
	kexECDHEECDSA = iota
	kexECDHERSA
	kexRSA
)

// tls12Suites are the TLS 1.2 suites whose rules the server knows; a
// session with any other suite is not resumed when 'OCSPRequest' waits.
var tls12Suites = map[uint16]suiteKind{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       {kexECDHEECDSA, true, true},
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       {kexECDHEECDSA, true, true},
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: {kexECDHEECDSA, true, false},
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          {kexECDHEECDSA, true, false},
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          {kexECDHEECDSA, true, false},
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         {kexECDHERSA, true, true},
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         {kexECDHERSA, true, true},
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   {kexECDHERSA, true, false},
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            {kexECDHERSA, true, false},
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            {kexECDHERSA, true, false},
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               {kexRSA, false, false},
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               {kexRSA, false, false},
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  {kexRSA, false, false},
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  {kexRSA, false, false},
}

// allowed reports whether the server still allows the suite.
func (k suiteKind) allowed(cfg *tls.Config, id uint16) bool {
	if fips140.Enabled() && !k.gcm {
		return false
	}
	if cfg.CipherSuites == nil {
		return k.byDefault
	}
	return slices.Contains(cfg.CipherSuites, id)
}

// fits reports whether the suite fits the served certificate's key, and
// for ECDHE whether client and server share a curve.
func (k suiteKind) fits(cert *tls.Certificate, cfg *tls.Config, hello *tls.ClientHelloInfo) bool {
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return false
	}
	switch pub := signer.Public(); k.kex {
	case kexECDHEECDSA:
		_, ec := pub.(*ecdsa.PublicKey)
		_, ed := pub.(ed25519.PublicKey)
		return (ec || ed) && sharedCurve(cfg, hello)
	case kexECDHERSA:
		_, isRSA := pub.(*rsa.PublicKey)
		return isRSA && sharedCurve(cfg, hello)
	default:
		_, isRSA := pub.(*rsa.PublicKey)
		_, decrypts := cert.PrivateKey.(crypto.Decrypter)
		return isRSA && decrypts
	}
}

// sharedCurve is crypto/tls's ECDHE check for TLS 1.2: a classical curve
// both sides allow, and uncompressed points.
func sharedCurve(cfg *tls.Config, hello *tls.ClientHelloInfo) bool {
	if len(hello.SupportedPoints) > 0 && !slices.Contains(hello.SupportedPoints, 0) {
		return false
	}
	for _, curve := range hello.SupportedCurves {
		switch curve {
		case tls.X25519:
			if fips140.Enabled() {
				continue
			}
		case tls.CurveP256, tls.CurveP384, tls.CurveP521:
		default:
			continue
		}
		if len(cfg.CurvePreferences) == 0 || slices.Contains(cfg.CurvePreferences, curve) {
			return true
		}
	}
	return false
}
