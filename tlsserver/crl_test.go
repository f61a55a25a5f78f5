package tlsserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// crlPKI is the client side of the CRL tests: two client roots, an
// intermediate of the first, client certificates, and CRLs.
type crlPKI struct {
	*tsPKI
	ca, ca2, inter *testpki.CA
	// good and revoked are ca's; good2 is ca2's, interLeaf inter's (sent
	// without the intermediate).
	good, revoked, good2, interLeaf *tls.Certificate
	// CRLs, DER: ca's listing revoked, expired, not yet valid; ca2's
	// empty; inter's empty; ca's listing inter.
	rev, expired, future, ca2Empty, interEmpty, revInter []byte
}

func newCRLPKI(t testing.TB) *crlPKI {
	p := &crlPKI{tsPKI: newTSPKI(t)}
	p.ca = testpki.NewCA(t, "crl client root")
	p.ca2 = testpki.NewCA(t, "crl client root two")
	p.inter = p.ca.Intermediate(t, "crl client intermediate")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	issue := func(ca *testpki.CA, cn string) (*tls.Certificate, *testpki.Leaf) {
		l := ca.Issue(t, testpki.LeafOptions{CommonName: cn, ExtKeyUsage: eku})
		c := l.TLSCertificate(false)
		return &c, l
	}
	var revoked *testpki.Leaf
	p.good, _ = issue(p.ca, "good")
	p.revoked, revoked = issue(p.ca, "revoked")
	p.good2, _ = issue(p.ca2, "good2")
	p.interLeaf, _ = issue(p.inter, "inter leaf")
	now := time.Now()
	p.rev = p.ca.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{revoked.Cert.SerialNumber}})
	p.expired = p.ca.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	p.future = p.ca.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)})
	p.ca2Empty = p.ca2.CRL(t, testpki.CRLOptions{})
	p.interEmpty = p.inter.CRL(t, testpki.CRLOptions{})
	p.revInter = p.ca.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{p.inter.Cert.SerialNumber}})
	return p
}

// server starts a server requiring and verifying client certificates
// against cas, with crls; mod changes the options further.
func (p *crlPKI) server(t testing.TB, cas []*testpki.CA, crls [][]byte, mod func(*tlsserver.Options)) *tlsserver.Server {
	t.Helper()
	return tsServer(t, p.tsPKI, func(o *tlsserver.Options) {
		for _, ca := range cas {
			o.CA = append(o.CA, ca.Cert)
		}
		o.CRL = crls
		o.Config = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
		if mod != nil {
			mod(o)
		}
	})
}

// Issue 18: with client certificates required and verified (Node's
// requestCert and rejectUnauthorized), a client is refused in the
// handshake when its certificate is revoked, its CA's CRL has expired or
// is not yet valid, or its CA has no CRL among those given; 'tlsClientError'
// carries Node's authorizationError code, and crlfetch's sentinels and
// error type. Without the crl option nothing is checked.
func TestCRLRefusesClients(t *testing.T) {
	p := newCRLPKI(t)
	later := func(o *tlsserver.Options) { // the server's clock is 2 h ahead: rev has expired by it
		o.Config.Time = func() time.Time { return time.Now().Add(2 * time.Hour) }
	}
	for _, tc := range []struct {
		name   string
		cas    []*testpki.CA
		crls   [][]byte
		mod    func(*tlsserver.Options)
		client *tls.Certificate
		code   string // "": served
		is     error
	}{
		{"good client", []*testpki.CA{p.ca}, [][]byte{p.rev}, nil, p.good, "", nil},
		{"revoked client", []*testpki.CA{p.ca}, [][]byte{p.rev}, nil, p.revoked, "CERT_REVOKED", crlfetch.ErrRevoked},
		{"expired CRL", []*testpki.CA{p.ca}, [][]byte{p.expired}, nil, p.good, "CRL_HAS_EXPIRED", crlfetch.ErrExpired},
		{"CRL expired by the server's clock", []*testpki.CA{p.ca}, [][]byte{p.rev}, later, p.good, "CRL_HAS_EXPIRED", crlfetch.ErrExpired},
		{"CRL not yet valid", []*testpki.CA{p.ca}, [][]byte{p.future}, nil, p.good, "CRL_NOT_YET_VALID", crlfetch.ErrNotYetValid},
		{"CA without CRL", []*testpki.CA{p.ca, p.ca2}, [][]byte{p.rev}, nil, p.good2, "UNABLE_TO_GET_CRL", crlfetch.ErrNoCRL},
		{"CA with its CRL", []*testpki.CA{p.ca, p.ca2}, [][]byte{p.rev, p.ca2Empty}, nil, p.good2, "", nil},
		{"no crl option", []*testpki.CA{p.ca}, nil, nil, p.revoked, "", nil},
		// The intermediate in CA makes crypto/x509 also return the chain
		// that stops at it; Node's chain goes on to the root, whose CRL
		// lists the intermediate.
		{"intermediate in CA revoked by the root", []*testpki.CA{p.ca, p.inter}, [][]byte{p.revInter, p.interEmpty}, nil, p.interLeaf, "CERT_REVOKED", crlfetch.ErrRevoked},
		{"intermediate in CA, both CRLs clean", []*testpki.CA{p.ca, p.inter}, [][]byte{p.rev, p.interEmpty}, nil, p.interLeaf, "", nil},
		{"intermediate's CRL missing", []*testpki.CA{p.ca, p.inter}, [][]byte{p.rev}, nil, p.interLeaf, "UNABLE_TO_GET_CRL", crlfetch.ErrNoCRL},
		// Without its root in CA the intermediate's revocation cannot be
		// checked; Node refuses such a chain with UNABLE_TO_GET_CRL too.
		{"intermediate in CA without its root", []*testpki.CA{p.inter}, [][]byte{p.interEmpty}, nil, p.interLeaf, "UNABLE_TO_GET_CRL", crlfetch.ErrNoCRL},
	} {
		for _, v := range versions {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				srv := p.server(t, tc.cas, tc.crls, tc.mod)
				ce := tsClientErrors(srv)
				c := clientCertDial(t, srv, p.tsPKI, v.v, tc.client)
				if tc.code == "" {
					if c == nil {
						t.Fatalf("refused: %v", ce.next(t))
					}
					ce.none(t)
					return
				}
				if c != nil {
					t.Fatal("the client was served")
				}
				err := ce.next(t)
				if got := tlsserver.Code(err); got != tc.code {
					t.Errorf("Code(%v) = %q, want %q", err, got, tc.code)
				}
				var crlErr *crlfetch.Error
				if !errors.Is(err, tc.is) || !errors.As(err, &crlErr) || crlErr.Cert == nil {
					t.Errorf("errors.Is(%v, %v), errors.As a *crlfetch.Error with its certificate: false", err, tc.is)
				}
			})
		}
	}
}

// Issue 18: a CRL is verified when it is set, against CA. One that
// verifies against no CA (another CA's, or forged in the CA's name), is
// malformed, or comes without a CA, is refused with a clear error by New,
// SetSecureContext and AddContext, and revokes nobody: the context in
// force stays.
func TestCRLRefusedWhenSet(t *testing.T) {
	p := newCRLPKI(t)
	forged := p.ca.CRL(t, testpki.CRLOptions{SignWith: p.ca2.Key})
	noSign := testpki.NewCAWith(t, "no cRLSign", testpki.CAOptions{KeyUsage: x509.KeyUsageCertSign})
	for _, tc := range []struct {
		name string
		cas  []*testpki.CA
		crl  []byte
		is   error
		code string
	}{
		{"another CA's CRL", []*testpki.CA{p.ca}, p.ca2Empty, crlfetch.ErrNoIssuer, ""},
		{"no CA", nil, p.rev, crlfetch.ErrNoIssuer, ""},
		{"forged", []*testpki.CA{p.ca}, forged, crlfetch.ErrSignature, "CRL_SIGNATURE_FAILURE"},
		{"issuer without cRLSign", []*testpki.CA{noSign}, noSign.CRL(t, testpki.CRLOptions{}), crlfetch.ErrSignature, "CRL_SIGNATURE_FAILURE"},
		{"not a CRL", []*testpki.CA{p.ca}, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), crlfetch.ErrMalformed, ""},
		{"DER garbage", []*testpki.CA{p.ca}, []byte{0x30, 0x03, 0x02, 0x01, 0x01}, crlfetch.ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ca []*x509.Certificate
			for _, c := range tc.cas {
				ca = append(ca, c.Cert)
			}
			check := func(what string, err error) {
				t.Helper()
				if err == nil || !errors.Is(err, tc.is) || tlsserver.Code(err) != tc.code || !strings.Contains(err.Error(), "CRL") {
					t.Errorf("%s: %v (code %q), want an error about the CRL wrapping %v, code %q", what, err, tlsserver.Code(err), tc.is, tc.code)
				}
			}
			_, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}, CA: ca, CRL: [][]byte{tc.crl},
				Config: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}})
			check("New", err)

			srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, nil)
			check("SetSecureContext", srv.SetSecureContext(tlsserver.SecureContext{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
				CA: ca, CRL: [][]byte{tc.crl}, Config: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}}))
			check("AddContext", srv.AddContext("localhost", tlsserver.SecureContext{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
				CA: ca, CRL: [][]byte{tc.crl}}))
			// Nothing changed: the revoked client is refused, the good one served.
			ce := tsClientErrors(srv)
			if c := clientCertDial(t, srv, p.tsPKI, 0, p.revoked); c != nil {
				t.Error("the revoked client was served after a refused CRL")
			}
			if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" {
				t.Errorf("revoked client: %v", err)
			}
			if c := clientCertDial(t, srv, p.tsPKI, 0, p.good); c == nil {
				t.Errorf("the good client was refused after a refused CRL: %v", ce.next(t))
			}
		})
	}
}

// Issue 18: Node's crl takes one or more CRLs, a PEM entry holding
// several; tlsemit takes DER too. The caller's bytes are not kept.
func TestCRLFormats(t *testing.T) {
	p := newCRLPKI(t)
	pemBoth := append(testpki.CRLPEM(p.rev), testpki.CRLPEM(p.ca2Empty)...)
	der := append([]byte(nil), p.rev...)
	for _, tc := range []struct {
		name string
		crls [][]byte
	}{
		{"DER", [][]byte{der, p.ca2Empty}},
		{"PEM, one per entry", [][]byte{testpki.CRLPEM(p.rev), testpki.CRLPEM(p.ca2Empty)}},
		{"PEM, both in one entry", [][]byte{pemBoth}},
		{"PEM with text around", [][]byte{append([]byte("Certificate Revocation List\n  issuer: …\n"), pemBoth...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := p.server(t, []*testpki.CA{p.ca, p.ca2}, tc.crls, nil)
			clear(der) // the server copied it
			ce := tsClientErrors(srv)
			for _, c := range []*tls.Certificate{p.good, p.good2} {
				if clientCertDial(t, srv, p.tsPKI, 0, c) == nil {
					t.Fatalf("%s refused: %v", c.Leaf.Subject.CommonName, ce.next(t))
				}
			}
			if clientCertDial(t, srv, p.tsPKI, 0, p.revoked) != nil {
				t.Fatal("the revoked client was served")
			}
			if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" {
				t.Fatalf("revoked: %v", err)
			}
			der = append(der[:0], p.rev...)
		})
	}
}

// verdict is what Authorized said in 'secureConnection'.
type verdict struct {
	ok   bool
	err  error
	code string
}

// authorizedServer records Authorized for each established connection.
func authorizedServer(t testing.TB, srv *tlsserver.Server) <-chan verdict {
	ch := make(chan verdict, 16)
	srv.OnSecureConnection(func(c *tls.Conn) {
		ok, err := tlsserver.Authorized(c)
		ch <- verdict{ok, err, tlsserver.Code(err)}
		c.Write([]byte{1})
		c.Close()
	})
	return ch
}

// dialFor handshakes presenting cert (nil: none) and waits for the server
// to close.
func dialFor(t testing.TB, srv *tlsserver.Server, p *tsPKI, v uint16, cert *tls.Certificate) {
	t.Helper()
	cfg := tsClientConfig(p, v)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	c, err := tsDial(srv, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	io.ReadAll(c)
	c.Close()
}

// Issue 18: Node's socket.authorized and authorizationError for
// requestCert with rejectUnauthorized false: Config.ClientAuth
// tls.RequestClientCert serves every client, and Authorized says whether
// its certificate verified and passed the CRLs, with Node's code.
func TestAuthorized(t *testing.T) {
	p := newCRLPKI(t)
	now := time.Now()
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	expiredCert := p.ca.Issue(t, testpki.LeafOptions{CommonName: "expired", ExtKeyUsage: eku,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}).TLSCertificate(false)
	stranger := testpki.NewCA(t, "stranger").Issue(t, testpki.LeafOptions{CommonName: "stranger", ExtKeyUsage: eku}).TLSCertificate(false)
	selfCA := testpki.NewCA(t, "self-signed client")
	selfSigned := tls.Certificate{Certificate: [][]byte{selfCA.DER}, PrivateKey: selfCA.Key}
	// Revoked and failing otherwise: Node reports the last failure it
	// meets, revocation coming after the purpose and before the times.
	badEKU := p.ca.Issue(t, testpki.LeafOptions{CommonName: "revoked server", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	badTime := p.ca.Issue(t, testpki.LeafOptions{CommonName: "revoked expired", ExtKeyUsage: eku,
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	revBoth := p.ca.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{badEKU.Cert.SerialNumber, badTime.Cert.SerialNumber}})
	badEKUCert, badTimeCert := badEKU.TLSCertificate(false), badTime.TLSCertificate(false)
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	for _, tc := range []struct {
		name   string
		auth   tls.ClientAuthType
		crls   [][]byte
		client *tls.Certificate
		ok     bool
		code   string
		is     error
		as     any
	}{
		{"good", tls.RequestClientCert, [][]byte{p.rev}, p.good, true, "", nil, nil},
		{"revoked", tls.RequestClientCert, [][]byte{p.rev}, p.revoked, false, "CERT_REVOKED", crlfetch.ErrRevoked, nil},
		{"expired CRL", tls.RequestClientCert, [][]byte{p.expired}, p.good, false, "CRL_HAS_EXPIRED", crlfetch.ErrExpired, nil},
		{"CRL not yet valid", tls.RequestClientCert, [][]byte{p.future}, p.good, false, "CRL_NOT_YET_VALID", crlfetch.ErrNotYetValid, nil},
		{"CA without CRL", tls.RequestClientCert, [][]byte{p.rev}, p.good2, false, "UNABLE_TO_GET_CRL", crlfetch.ErrNoCRL, nil},
		{"revoked, no crl option", tls.RequestClientCert, nil, p.revoked, true, "", nil, nil},
		{"no certificate", tls.RequestClientCert, [][]byte{p.rev}, nil, false, "UNABLE_TO_GET_ISSUER_CERT", tlsserver.ErrPeerDidNotReturnACertificate, nil},
		{"unknown issuer", tls.RequestClientCert, [][]byte{p.rev}, &stranger, false, "UNABLE_TO_VERIFY_LEAF_SIGNATURE", nil, &unknown},
		{"expired certificate", tls.RequestClientCert, [][]byte{p.rev}, &expiredCert, false, "CERT_HAS_EXPIRED", nil, &invalid},
		{"self-signed, CRLs given", tls.RequestClientCert, [][]byte{p.rev}, &selfSigned, false, "UNABLE_TO_GET_CRL", crlfetch.ErrNoCRL, &unknown},
		{"self-signed, no CRL", tls.RequestClientCert, nil, &selfSigned, false, "DEPTH_ZERO_SELF_SIGNED_CERT", nil, &unknown},
		{"revoked, server purpose", tls.RequestClientCert, [][]byte{revBoth}, &badEKUCert, false, "CERT_REVOKED", crlfetch.ErrRevoked, &invalid},
		{"revoked, expired", tls.RequestClientCert, [][]byte{revBoth}, &badTimeCert, false, "CERT_HAS_EXPIRED", nil, &invalid},
		{"revoked, RequireAnyClientCert", tls.RequireAnyClientCert, [][]byte{p.rev}, p.revoked, false, "CERT_REVOKED", crlfetch.ErrRevoked, nil},
		{"good, RequireAndVerifyClientCert", tls.RequireAndVerifyClientCert, [][]byte{p.rev}, p.good, true, "", nil, nil},
		{"good, VerifyClientCertIfGiven", tls.VerifyClientCertIfGiven, [][]byte{p.rev}, p.good, true, "", nil, nil},
		{"none, VerifyClientCertIfGiven", tls.VerifyClientCertIfGiven, [][]byte{p.rev}, nil, false, "UNABLE_TO_GET_ISSUER_CERT", tlsserver.ErrPeerDidNotReturnACertificate, nil},
		{"NoClientCert: not requested", tls.NoClientCert, [][]byte{p.rev}, nil, false, "", nil, nil},
	} {
		for _, v := range versions {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				srv := p.server(t, []*testpki.CA{p.ca, p.ca2}, tc.crls, func(o *tlsserver.Options) { o.Config.ClientAuth = tc.auth })
				ce := tsClientErrors(srv)
				got := authorizedServer(t, srv)
				dialFor(t, srv, p.tsPKI, v.v, tc.client)
				r := <-got
				ce.none(t)
				if r.ok != tc.ok || r.code != tc.code || r.ok && r.err != nil || tc.code != "" && r.err == nil {
					t.Fatalf("Authorized = %v, %v (code %q), want %v, code %q", r.ok, r.err, r.code, tc.ok, tc.code)
				}
				if tc.is != nil && !errors.Is(r.err, tc.is) {
					t.Errorf("errors.Is(%v, %v) = false", r.err, tc.is)
				}
				if tc.as != nil {
					var ve *tls.CertificateVerificationError
					if !errors.As(r.err, &ve) || !errors.As(r.err, tc.as) {
						t.Errorf("errors.As(%v, %T) = false", r.err, tc.as)
					}
				}
			})
		}
	}

	// Not a connection of a Server.
	cs, ss := net.Pipe()
	defer cs.Close()
	defer ss.Close()
	if ok, err := tlsserver.Authorized(tls.Server(ss, &tls.Config{})); ok || !errors.Is(err, tlsserver.ErrNotEstablished) {
		t.Errorf("Authorized(a crypto/tls connection) = %v, %v", ok, err)
	}
	if ok, err := tlsserver.Authorized(nil); ok || !errors.Is(err, tlsserver.ErrNotEstablished) {
		t.Errorf("Authorized(nil) = %v, %v", ok, err)
	}
}

// Issue 18: Authorized's verdict is the handshake's, as Node's authorized:
// a CRL that expires after the handshake does not change it, nor do later
// calls.
func TestAuthorizedAsOfTheHandshake(t *testing.T) {
	p := newCRLPKI(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, func(o *tlsserver.Options) {
		o.Config.ClientAuth = tls.RequestClientCert
		o.Config.Time = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	conns := make(chan *tls.Conn, 1)
	srv.OnSecureConnection(func(c *tls.Conn) { conns <- c })
	cfg := tsClientConfig(p.tsPKI, 0)
	cfg.Certificates = []tls.Certificate{*p.good}
	client := tsMustDial(t, srv, cfg)
	client.Write([]byte("x")) // a TLS 1.3 server has the certificate once it reads
	c := <-conns
	defer c.Close()
	c.Read(make([]byte, 1))
	clock.Store(time.Now().Add(3 * time.Hour).UnixNano()) // the CRL has expired by now
	for range 2 {
		if ok, err := tlsserver.Authorized(c); !ok || err != nil {
			t.Fatalf("Authorized = %v, %v: want the handshake's verdict", ok, err)
		}
	}
	// A new handshake, at the new time, gets its own verdict.
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	got := authorizedServer(t, srv)
	dialFor(t, srv, p.tsPKI, 0, p.good)
	if r := <-got; r.ok || r.code != "CRL_HAS_EXPIRED" {
		t.Fatalf("after the CRL's nextUpdate: %v, %v", r.ok, r.err)
	}
}

// Issue 18: req.socket.authorized in an https server's request listener is
// RequestAuthorized(r) with Options.HTTP.
func TestRequestAuthorized(t *testing.T) {
	p := newCRLPKI(t)
	srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, func(o *tlsserver.Options) {
		o.Config.ClientAuth = tls.RequestClientCert
		o.HTTP = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, err := tlsserver.RequestAuthorized(r)
			if !ok {
				http.Error(w, tlsserver.Code(err), http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "welcome "+r.TLS.PeerCertificates[0].Subject.CommonName)
		})}
	})
	for _, tc := range []struct {
		cert *tls.Certificate
		want string
	}{{p.good, "200 welcome good"}, {p.revoked, "401 CERT_REVOKED\n"}, {nil, "401 UNABLE_TO_GET_ISSUER_CERT\n"}} {
		cfg := tsClientConfig(p.tsPKI, 0)
		if tc.cert != nil {
			cfg.Certificates = []tls.Certificate{*tc.cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + srv.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if got := resp.Status[:3] + " " + string(body); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	r, _ := http.NewRequest("GET", "/", nil)
	if ok, err := tlsserver.RequestAuthorized(r); ok || !errors.Is(err, tlsserver.ErrNotEstablished) {
		t.Errorf("RequestAuthorized of a request from elsewhere = %v, %v", ok, err)
	}

	// Your own http.Server on Listener: Authorized in its ConnContext.
	srv2 := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, func(o *tlsserver.Options) { o.Config.ClientAuth = tls.RequestClientCert })
	type authKey struct{}
	hs := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			_, err := tlsserver.Authorized(c.(*tls.Conn))
			return context.WithValue(ctx, authKey{}, tlsserver.Code(err))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "code "+r.Context().Value(authKey{}).(string))
		}),
	}
	go hs.Serve(srv2.Listener())
	defer hs.Close()
	cfg := tsClientConfig(p.tsPKI, 0)
	cfg.Certificates = []tls.Certificate{*p.revoked}
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + srv2.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "code CERT_REVOKED" {
		t.Errorf("own http.Server: %q", body)
	}
}

// Issue 18: the CRL check is in the context's Config.VerifyConnection; the
// per-connection copies of the Config (a key log, the session store, TLS
// 1.2 tickets) keep it.
func TestCRLSurvivesPerConnectionConfig(t *testing.T) {
	p := newCRLPKI(t)
	for _, tc := range []struct {
		name string
		v    uint16
		mod  func(*tlsserver.Server)
	}{
		{"keylog", tls.VersionTLS13, func(s *tlsserver.Server) { s.OnKeylog(func([]byte, net.Conn) {}) }},
		{"session store", tls.VersionTLS13, func(s *tlsserver.Server) {
			s.OnNewSession(func(_, _ []byte, done func()) { done() })
			s.OnResumeSession(func(_ []byte, cb func(error, []byte)) { cb(nil, nil) })
		}},
		{"TLS 1.2 tickets", tls.VersionTLS12, func(*tlsserver.Server) {}},
		{"TLS 1.2 with 'OCSPRequest'", tls.VersionTLS12, func(s *tlsserver.Server) {
			s.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { cb(nil, nil) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, nil)
			tc.mod(srv)
			ce := tsClientErrors(srv)
			if clientCertDial(t, srv, p.tsPKI, tc.v, p.revoked) != nil {
				t.Fatal("the revoked client was served")
			}
			if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" {
				t.Fatalf("revoked: %v", err)
			}
			if clientCertDial(t, srv, p.tsPKI, tc.v, p.good) == nil {
				t.Fatalf("the good client was refused: %v", ce.next(t))
			}
		})
	}
}

// Issue 18: the CRL check and the Config's own hooks both run: crypto/tls
// calls VerifyPeerCertificate, then VerifyConnection, whose CRL check
// comes before the Config's own (which, like VerifyConnection after a
// failed verification, is not called for a client the CRLs refused).
func TestCRLChainsConfigHooks(t *testing.T) {
	p := newCRLPKI(t)
	var peer, conn atomic.Int32
	var refuse atomic.Bool
	errMine := errors.New("my hook says no")
	srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, func(o *tlsserver.Options) {
		o.Config.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) > 0 {
				peer.Add(1)
			}
			return nil
		}
		o.Config.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) > 0 {
				conn.Add(1)
			}
			if refuse.Load() {
				return errMine
			}
			return nil
		}
	})
	srv.OnKeylog(func([]byte, net.Conn) {}) // and through a per-connection Config
	ce := tsClientErrors(srv)
	if clientCertDial(t, srv, p.tsPKI, 0, p.good) == nil {
		t.Fatalf("good client refused: %v", ce.next(t))
	}
	if peer.Load() != 1 || conn.Load() != 1 {
		t.Fatalf("good client: VerifyPeerCertificate called %d times, VerifyConnection %d, want 1 each", peer.Load(), conn.Load())
	}
	if clientCertDial(t, srv, p.tsPKI, 0, p.revoked) != nil {
		t.Fatal("revoked client served")
	}
	if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" || peer.Load() != 2 || conn.Load() != 1 {
		t.Fatalf("revoked client: %v; VerifyPeerCertificate called %d times, VerifyConnection %d, want 2 and 1", err, peer.Load(), conn.Load())
	}
	refuse.Store(true)
	if clientCertDial(t, srv, p.tsPKI, 0, p.good) != nil {
		t.Fatal("the Config's own VerifyConnection refused, and the client was served")
	}
	if err := ce.next(t); !errors.Is(err, errMine) {
		t.Fatalf("good client refused by the Config's hook: %v", err)
	}
}

// Issue 18: a resumed session is checked against the CRLs in force: a
// client revoked after its session was issued is refused when it resumes
// (Node resumes it, authorized by the session).
func TestCRLAppliesToResumedSessions(t *testing.T) {
	p := newCRLPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			clean := p.ca.CRL(t, testpki.CRLOptions{})
			srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{clean}, nil)
			ce := tsClientErrors(srv)
			srv.OnSecureConnection(func(c *tls.Conn) { c.Write([]byte{1}); c.Close() })
			var full atomic.Int32 // 'OCSPRequest' comes on full handshakes only
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { full.Add(1); cb(nil, nil) })
			cfg := tsClientConfig(p.tsPKI, v.v)
			cfg.Certificates = []tls.Certificate{*p.revoked}
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			dial := func() (resumed, served bool) {
				c, err := tsDial(srv, cfg)
				if err != nil {
					return false, false
				}
				defer c.Close()
				n, _ := c.Read(make([]byte, 1))
				return c.ConnectionState().DidResume, n == 1
			}
			if _, served := dial(); !served {
				t.Fatalf("first connection refused: %v", ce.next(t))
			}
			if resumed, served := dial(); !resumed || !served {
				t.Fatalf("second connection: resumed %v, served %v; want both", resumed, served)
			}
			opts := tlsserver.SecureContext{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}, CA: []*x509.Certificate{p.ca.Cert},
				CRL: [][]byte{p.rev}, Config: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}}
			if err := srv.SetSecureContext(opts); err != nil {
				t.Fatal(err)
			}
			if _, served := dial(); served {
				t.Fatal("the revoked client resumed its session")
			}
			if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" || full.Load() != 1 {
				t.Fatalf("resumption: %v, after %d full handshakes (want 1: refused on resumption)", err, full.Load())
			}
		})
	}
}

// Issue 18: as in Node, an AddContext context with a CA verifies its
// names' clients against its own CA and CRLs (none: not checked); one
// without CA uses the default context's CA and CRLs (Node: its public
// roots, refusing private clients). SNICallback's certificates use the
// default context's.
func TestCRLPerSNIContext(t *testing.T) {
	p := newCRLPKI(t)
	names := p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"ca.test", "crl.test", "none.test", "two.test"}})
	nameCert := names.TLSCertificate(false)
	srv := p.server(t, []*testpki.CA{p.ca}, [][]byte{p.rev}, nil)
	for _, c := range []struct {
		host string
		ctx  tlsserver.SecureContext
	}{
		{"ca.test", tlsserver.SecureContext{CA: []*x509.Certificate{p.ca.Cert}}},
		{"crl.test", tlsserver.SecureContext{CA: []*x509.Certificate{p.ca.Cert}, CRL: [][]byte{p.expired}}},
		{"none.test", tlsserver.SecureContext{}},
		{"two.test", tlsserver.SecureContext{CA: []*x509.Certificate{p.ca2.Cert}, CRL: [][]byte{p.ca2Empty}}},
	} {
		c.ctx.Certificates = []tls.Certificate{nameCert}
		if err := srv.AddContext(c.host, c.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.AddContext("x.test", tlsserver.SecureContext{Certificates: []tls.Certificate{nameCert}, CRL: [][]byte{p.rev}}); err == nil {
		t.Error("AddContext took a CRL without a CA")
	}
	ce := tsClientErrors(srv)
	srv.OnSecureConnection(func(c *tls.Conn) { c.Write([]byte{1}); c.Close() })
	for _, tc := range []struct {
		host   string
		client *tls.Certificate
		code   string
	}{
		{"localhost", p.revoked, "CERT_REVOKED"},
		{"ca.test", p.revoked, ""},
		{"crl.test", p.good, "CRL_HAS_EXPIRED"},
		{"none.test", p.revoked, "CERT_REVOKED"},
		{"none.test", p.good, ""},
		{"two.test", p.good2, ""},
		{"two.test", p.good, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"},
		{"localhost", p.good2, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"},
	} {
		for _, v := range versions {
			cfg := tsClientConfig(p.tsPKI, v.v)
			cfg.ServerName = tc.host
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AddCert(p.tsPKI.ca.Cert)
			cfg.RootCAs.AddCert(p.ca.Cert)
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.client, nil }
			served := false
			if c, err := tsDial(srv, cfg); err == nil {
				n, _ := c.Read(make([]byte, 1))
				served = n == 1
				c.Close()
			}
			if tc.code == "" {
				if !served {
					t.Errorf("%s, %s, %s: refused: %v", tc.host, tc.client.Leaf.Subject.CommonName, v.name, ce.next(t))
				}
				continue
			}
			if err := ce.next(t); served || tlsserver.Code(err) != tc.code {
				t.Errorf("%s, %s, %s: served %v, %v; want %s", tc.host, tc.client.Leaf.Subject.CommonName, v.name, served, err, tc.code)
			}
		}
	}
	ce.none(t)
}
