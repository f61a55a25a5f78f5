package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/statuspage"
	"github.com/tlsemit/tlsemit/tlsserver"
)

type config struct {
	serveAddr  string
	statusAddr string // the status page's listener in serve mode; "" means 127.0.0.1:0
	noNode     bool
	validity   time.Duration
}

// demo holds what the tour sets up.
type demo struct {
	cfg     config
	tr      *tracer
	dir     string
	ca      *testpki.CA
	leaf    *testpki.Leaf
	caPath  string
	resp    *responder
	fetcher *ocspfetch.Fetcher
	srv     *tlsserver.Server
	events  chan ocspfetch.Event // every ocspfetch event, for the tour to wait on
	status  string               // the status page's URL in serve mode

	// Revocation by CRL: the CA's CRL host, the crlfetch Fetcher that
	// checks client certificates, two client certificates (one revoked),
	// and a served certificate with no OCSP responder (revoked).
	crlHost        *crlHost
	clientCRL      *crlfetch.Fetcher
	goodClient     *testpki.Leaf
	revokedClient  *testpki.Leaf
	crlOnly        *testpki.Leaf
	clientErrCodes chan string // the codes of 'tlsClientError'
}

func run(ctx context.Context, cfg config, tr *tracer) error {
	if cfg.validity <= 0 {
		cfg.validity = 6 * time.Second
	}
	d := &demo{cfg: cfg, tr: tr, events: make(chan ocspfetch.Event, 64), clientErrCodes: make(chan string, 16)}
	dir, err := os.MkdirTemp("", "tlsemit-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	defer os.RemoveAll(dir)

	tr.step("1. a throwaway PKI and a local OCSP responder")
	stopResponder, err := d.startPKIAndResponder()
	if err != nil {
		return err
	}
	defer stopResponder()
	if err := d.startCRLs(); err != nil {
		return err
	}
	defer d.crlHost.stop()

	tr.step("2. a tlsserver.Server with ocspfetch wired in: srv.OnOCSPRequest(fetcher.OCSPRequest); client certificates checked by crlfetch: Config.VerifyConnection = crls.VerifyConnection")
	if err := d.startServer(ctx); err != nil {
		return err
	}
	defer d.clientCRL.Close()
	defer d.fetcher.Close()
	defer d.srv.Close()

	if err := d.tour(ctx); err != nil {
		return err
	}

	if cfg.serveAddr != "" {
		stopStatus, err := d.startStatusPage()
		if err != nil {
			return err
		}
		defer stopStatus()
		d.printServeHelp()
		<-ctx.Done()
		tr.step("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.srv.Shutdown(sctx); err != nil {
			return err
		}
		return nil
	}
	tr.step("done: every step behaved as expected")
	return nil
}

func (d *demo) startPKIAndResponder() (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String() + "/"
	d.ca = testpki.NewCA(testpki.Exit, "tlsemit demo CA")
	d.leaf = d.ca.Issue(testpki.Exit, testpki.LeafOptions{OCSPServer: []string{url}})
	d.caPath, _ = d.ca.WritePEM(d.dir)
	d.tr.log("demo", "CA %q and a certificate for localhost, 127.0.0.1 (serial %s) in %s", d.ca.Name, d.leaf.SerialHex(), d.dir)
	d.tr.log("demo", "the certificate's AIA names the responder: %s", url)

	d.resp = newResponder(d.ca.Cert, d.ca.Key, d.cfg.validity)
	d.resp.onRequest = func(status string) {
		d.tr.log("responder", "answered %s (request #%d)", status, d.resp.requests.Load())
	}
	hs := &http.Server{Handler: d.resp, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	d.tr.log("responder", "listening on %s, answers valid for %s", ln.Addr(), d.cfg.validity)
	return func() { hs.Close() }, nil
}

// startCRLs starts the CA's CRL host and issues the certificates whose
// revocation it publishes: two client certificates, one revoked, and a
// server certificate for crl-only.localhost that names no OCSP responder,
// only the CRL, as Let's Encrypt's have since 2025, revoked too.
func (d *demo) startCRLs() error {
	h, err := startCRLHost(d.tr)
	if err != nil {
		return err
	}
	d.crlHost = h
	client := func(name string) *testpki.Leaf {
		return d.ca.Issue(testpki.Exit, testpki.LeafOptions{CommonName: name, DNSNames: []string{name},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CRLDistributionPoints: []string{h.url}})
	}
	d.goodClient, d.revokedClient = client("good client"), client("revoked client")
	d.crlOnly = d.ca.Issue(testpki.Exit, testpki.LeafOptions{DNSNames: []string{crlOnlyName}, CRLDistributionPoints: []string{h.url}})
	d.tr.log("demo", "client certificates %q (serial %s) and %q (serial %s); a certificate for %s (serial %s) with no OCSP responder, only a CRL distribution point",
		"good client", d.goodClient.SerialHex(), "revoked client", d.revokedClient.SerialHex(), crlOnlyName, d.crlOnly.SerialHex())
	h.publish(d.ca, d.revokedClient.Cert.SerialNumber, d.crlOnly.Cert.SerialNumber)
	return nil
}

// crlOnlyName is the name of the served certificate without a responder.
const crlOnlyName = "crl-only.localhost"

func (d *demo) startServer(ctx context.Context) error {
	tr := d.tr
	f, err := ocspfetch.New(ocspfetch.Options{
		HandshakeBudget: 2 * time.Second,
		// The demo's answers live seconds; a real responder's, hours.
		MinRefreshInterval: time.Second,
		OnEvent: func(ev ocspfetch.Event) { // prints everything; without a Logger, nothing else does
			line := fmt.Sprintf("%s for serial %s", ev.Kind, ev.Serial)
			switch {
			case ev.Source == "crl" && ev.Kind == ocspfetch.EventNoResponder:
				line += " (its revocation comes from its CRL)"
			case ev.Source == "crl":
				line += " (from its CRL)"
			}
			if !ev.ThisUpdate.IsZero() {
				line += fmt.Sprintf(" (thisUpdate %s, nextUpdate %s)", clock(ev.ThisUpdate), clock(ev.NextUpdate))
			}
			if ev.Err != nil {
				line += ": " + ev.Err.Error()
			}
			tr.log("ocspfetch", "%s", line)
			select {
			case d.events <- ev:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	d.fetcher = f

	// Client certificates, when a client sends one, checked against the
	// CRL of the CA that issued them, as Node's tls.createServer({ca,
	// crl, requestCert}) does, the CRL fetched from their distribution
	// point and kept fresh.
	crls, err := crlfetch.New(crlfetch.Options{OnEvent: func(ev crlfetch.Event) {
		switch {
		case ev.Kind == crlfetch.EventFetched:
			tr.log("crlfetch", "fetched %s: number %v, %d revoked, nextUpdate %s", ev.Source, ev.Number, ev.Entries, clock(ev.NextUpdate))
		case ev.Err != nil:
			tr.log("crlfetch", "%s (%s): %v", ev.Kind, ev.Code, ev.Err)
		}
	}})
	if err != nil {
		f.Close()
		return err
	}
	d.clientCRL = crls

	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{d.leaf.TLSCertificate(true)},
		CA:               []*x509.Certificate{d.ca.Cert}, // Node's ca: the roots of client certificates
		Config:           &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, VerifyConnection: crls.VerifyConnection},
		HandshakeTimeout: 10 * time.Second,
		// Served on the established connections, as Node's
		// https.createServer(options, handler).
		HTTP: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "hello from tlsemit")
		}), ReadHeaderTimeout: 5 * time.Second},
	})
	if err != nil {
		f.Close()
		crls.Close()
		return err
	}
	d.srv = srv
	if err := srv.AddContext(crlOnlyName, tlsserver.SecureContext{Certificates: []tls.Certificate{d.crlOnly.TLSCertificate(true)}}); err != nil {
		return err
	}

	srv.OnListening(func() { tr.log("server", "'listening' on %s", srv.Addr()) })
	srv.OnClose(func() { tr.log("server", "'close'") })
	srv.OnError(func(err error) { tr.log("server", "'error' %v", err) })
	srv.OnConnection(func(c net.Conn) { tr.log("server", "'connection' from %s", c.RemoteAddr()) })
	srv.OnTLSClientError(func(err error, c net.Conn) {
		tr.log("server", "'tlsClientError' %v (code %s)", err, tlsserver.Code(err))
		select {
		case d.clientErrCodes <- tlsserver.Code(err):
		default:
		}
	})
	var keylogLines sync.Map // remote address → *atomic.Int32
	srv.OnKeylog(func(line []byte, c net.Conn) {
		n, _ := keylogLines.LoadOrStore(c.RemoteAddr().String(), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
	})
	srv.OnSecureConnection(func(c *tls.Conn) {
		st := c.ConnectionState()
		lines := int32(0)
		if n, ok := keylogLines.LoadAndDelete(c.RemoteAddr().String()); ok {
			lines = n.(*atomic.Int32).Load()
		}
		tr.log("server", "'secureConnection' %s, resumed %v, %d 'keylog' lines",
			tls.VersionName(st.Version), st.DidResume, lines)
	})

	// Node's classic external session store, in memory.
	var sessions sync.Map
	srv.OnNewSession(func(id, data []byte, done func()) {
		sessions.Store(string(id), append([]byte(nil), data...))
		tr.log("server", "'newSession' id %s…, %d bytes stored", hex.EncodeToString(id[:4]), len(data))
		done()
	})
	srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
		data, ok := sessions.Load(string(id))
		tr.log("server", "'resumeSession' id %s…, found %v", hex.EncodeToString(id[:min(4, len(id))]), ok)
		if !ok {
			cb(nil, nil)
			return
		}
		cb(nil, data.([]byte))
	})

	// The listener a Node user writes, with ocspfetch doing the work.
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		tr.log("server", "'OCSPRequest' cert %s, issuer %s", describe(cert), describe(issuer))
		f.OCSPRequest(cert, issuer, func(err error, resp []byte) {
			if err != nil {
				tr.log("server", "OCSPRequest callback: error %v", err)
			} else {
				tr.log("server", "OCSPRequest callback: %d bytes to staple", len(resp))
			}
			cb(err, resp)
		})
	})

	addr := d.cfg.serveAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return srv.Listen(ctx, "tcp", addr)
}

// describe names a DER certificate by its subject and a short hash.
func describe(der []byte) string {
	if der == nil {
		return "nil"
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "unparsable"
	}
	sum := sha256.Sum256(der)
	return fmt.Sprintf("%q (sha256 %s…)", c.Subject.CommonName, hex.EncodeToString(sum[:4]))
}

// clock is t's time of day, and its date when that is not today.
func clock(t time.Time) string {
	t = t.Local()
	if y, m, d := t.Date(); y != time.Now().Year() || m != time.Now().Month() || d != time.Now().Day() {
		return t.Format("Jan 2 15:04:05")
	}
	return t.Format("15:04:05")
}

// tour runs the clients and checks each outcome; an unexpected one is an
// error, so the demo cannot go on looking fine while broken.
func (d *demo) tour(ctx context.Context) error {
	tr := d.tr
	sessions := tls.NewLRUClientSessionCache(4)

	tr.step("3. a Go client, cold: ocspfetch asks the responder within the handshake")
	if err := d.expect(d.goClient("go client #1", nil), ocsp.Good); err != nil {
		return err
	}
	tr.step("4. a second Go client: the staple comes from memory, no request to the responder")
	before := d.resp.requests.Load()
	if err := d.expect(d.goClient("go client #2", sessions), ocsp.Good); err != nil {
		return err
	}
	if n := d.resp.requests.Load() - before; n != 0 {
		return fmt.Errorf("the warm handshake sent %d requests to the responder, want 0", n)
	}
	tr.step("5. the same client resumes its session: no 'OCSPRequest' (as in Node)")
	out := d.goClient("go client #2, resumed", sessions)
	if out.err != nil || !out.resumed {
		return fmt.Errorf("resumption: %+v", out)
	}
	if !d.cfg.noNode {
		tr.step("6. Node's tls.connect({requestOCSP: true}) against the Go server")
		if err := d.nodeClient(ctx); err != nil {
			return err
		}
	}
	if err := d.crlTour(ctx); err != nil {
		return err
	}
	if d.cfg.serveAddr != "" {
		return nil // keep the certificate good for the reader's own clients
	}

	tr.step("9. revoke the certificate at the responder; ocspfetch's background refresh notices")
	d.resp.revoke(d.leaf.Cert.SerialNumber)
	tr.log("responder", "serial %s is now revoked", d.leaf.SerialHex())
	if err := d.waitRevoked(ctx, d.leaf, 2*d.cfg.validity+5*time.Second); err != nil {
		return err
	}
	tr.step("10. the next handshake: no staple, since ocspfetch does not staple a revoked answer by default")
	out = d.goClient("go client #3", nil)
	if out.err != nil {
		return fmt.Errorf("go client #3: %v", out.err)
	}
	if out.staple != nil {
		return errors.New("a revoked answer was stapled")
	}
	return nil
}

// crlTour shows revocation by CRL: client certificates checked by
// crlfetch, and a served certificate without a responder whose revocation
// ocspfetch learns from its CRL.
func (d *demo) crlTour(ctx context.Context) error {
	tr := d.tr
	tr.step("7. client certificates, checked against the CA's CRL by crlfetch's VerifyConnection: a good client is served, a revoked one refused with CERT_REVOKED")
	good, bad := d.goodClient.TLSCertificate(true), d.revokedClient.TLSCertificate(true)
	if out := d.goClientWith("client with a good certificate", "localhost", nil, &good); out.err != nil {
		return fmt.Errorf("the good client: %v", out.err)
	}
	if out := d.goClientWith("client with a revoked certificate", "localhost", nil, &bad); out.err == nil {
		return errors.New("the revoked client was served")
	}
	select {
	case code := <-d.clientErrCodes:
		if code != "CERT_REVOKED" {
			return fmt.Errorf("the revoked client was refused with %s, want CERT_REVOKED", code)
		}
	case <-time.After(5 * time.Second):
		return errors.New("no 'tlsClientError' for the revoked client")
	case <-ctx.Done():
		return ctx.Err()
	}
	tr.log("demo", "'tlsClientError' said CERT_REVOKED, the reason Node's rejectUnauthorized server loses (ECONNRESET)")

	tr.step("8. a served certificate without OCSP, as Let's Encrypt's are since 2025: nothing to staple; ocspfetch learns from its CRL that it is revoked")
	out := d.goClientWith("client of "+crlOnlyName, crlOnlyName, nil, nil)
	if out.err != nil {
		return fmt.Errorf("client of %s: %v", crlOnlyName, out.err)
	}
	if out.raw != nil {
		return fmt.Errorf("%s was stapled", crlOnlyName)
	}
	if err := d.waitRevoked(ctx, d.crlOnly, 5*time.Second); err != nil {
		return err
	}
	tr.log("demo", "the status page shows %s Revoked, from its CRL", crlOnlyName)
	return nil
}

// waitRevoked waits for ocspfetch to report leaf revoked.
func (d *demo) waitRevoked(ctx context.Context, leaf *testpki.Leaf, within time.Duration) error {
	deadline := time.After(within)
	for {
		select {
		case ev := <-d.events:
			if ev.Kind == ocspfetch.EventRevoked && ev.Serial == leaf.Serial() {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("ocspfetch did not see serial %s revoked in time", leaf.SerialHex())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// outcome is what a client saw.
type outcome struct {
	err     error
	resumed bool
	staple  *ocsp.Response
	raw     []byte
	verr    error
}

// expect checks that a client got a verified staple with the given status.
func (d *demo) expect(o outcome, status int) error {
	switch {
	case o.err != nil:
		return o.err
	case o.staple == nil:
		return errors.New("the client got no staple")
	case o.verr != nil:
		return fmt.Errorf("the staple does not verify: %v", o.verr)
	case o.staple.Status != status:
		return fmt.Errorf("staple status %s, want %s", statusName(o.staple.Status), statusName(status))
	}
	return nil
}

func (d *demo) goClient(name string, sessions tls.ClientSessionCache) outcome {
	return d.goClientWith(name, "localhost", sessions, nil)
}

// goClientWith is goClient for serverName, with a client certificate
// when cert is not nil.
func (d *demo) goClientWith(name, serverName string, sessions tls.ClientSessionCache, cert *tls.Certificate) outcome {
	pool := x509.NewCertPool()
	pool.AddCert(d.ca.Cert)
	cfg := &tls.Config{ServerName: serverName, RootCAs: pool, ClientSessionCache: sessions}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", d.srv.Addr().String(), cfg)
	if err != nil {
		d.tr.log("client", "%s: handshake failed: %v", name, err)
		return outcome{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	st := conn.ConnectionState()
	o := outcome{resumed: st.DidResume, raw: st.OCSPResponse}
	d.report(name, tls.VersionName(st.Version), st.DidResume, st.OCSPResponse, &o)
	// One HTTP request over the connection (Options.HTTP serves it),
	// and reading the answer also takes in the session ticket.
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", serverName); err != nil {
		o.err = err
		d.tr.log("client", "%s: refused: %v", name, err)
		return o
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		// In TLS 1.3 the client's handshake ends before the server has
		// checked the client's certificate: a refusal comes as an alert
		// on the first read.
		o.err = err
		d.tr.log("client", "%s: refused: %v", name, err)
		return o
	}
	body, _ := io.ReadAll(resp.Body)
	d.tr.log("client", "%s: HTTP %s %q", name, resp.Status, strings.TrimSpace(string(body)))
	return o
}

// report parses and verifies a staple against the demo CA and prints it.
func (d *demo) report(name, version string, resumed bool, raw []byte, o *outcome) {
	prefix := fmt.Sprintf("%s: %s", name, version)
	if resumed {
		// A resumed handshake staples nothing; clients keep the staple of
		// the session's first handshake.
		prefix += ", resumed (staple remembered from the first handshake)"
	}
	if len(raw) == 0 {
		d.tr.log("client", "%s, no staple", prefix)
		return
	}
	resp, err := ocsp.ParseResponseForCert(raw, d.leaf.Cert, d.ca.Cert)
	if err != nil {
		o.verr = err
		d.tr.log("client", "%s, staple of %d bytes that does NOT verify: %v", prefix, len(raw), err)
		return
	}
	o.staple = resp
	d.tr.log("client", "%s, staple verified: %s, thisUpdate %s, nextUpdate %s",
		prefix, statusName(resp.Status), clock(resp.ThisUpdate), clock(resp.NextUpdate))
}

func statusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// startStatusPage serves the status page on its own loopback listener,
// apart from the TLS port: it is for the operator, never the public.
func (d *demo) startStatusPage() (stop func(), err error) {
	addr := d.cfg.statusAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/tlsemit/", statuspage.New(statuspage.Options{Server: d.srv, Fetchers: []*ocspfetch.Fetcher{d.fetcher},
		CRLFetchers: []*crlfetch.Fetcher{d.clientCRL}}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	d.status = "http://" + ln.Addr().String() + "/debug/tlsemit/"
	return func() { hs.Close() }, nil
}

func (d *demo) printServeHelp() {
	addr := d.srv.Addr().(*net.TCPAddr)
	d.tr.step("serving on %s until Ctrl-C; try:", addr)
	fmt.Fprintf(d.tr.w, "  openssl s_client -connect %s -servername localhost -status -CAfile %s </dev/null\n",
		addr, filepath.Join(d.caPath))
	fmt.Fprintf(d.tr.w, "  curl --cert-status --cacert %s --resolve localhost:%d:%s https://localhost:%d/\n",
		d.caPath, addr.Port, addr.IP, addr.Port)
	fmt.Fprintln(d.tr.w, "  (curl prints \"hello from tlsemit\" only after it has checked the staple)")
	fmt.Fprintf(d.tr.w, "status page (staples, CRLs, handshakes, client errors; JSON with Accept: application/json): %s\n", d.status)
}
