package tlsserver_test

// The differential test: each scenario runs once against Node's own
// tls.Server (testdata/node-server.js) and once against tlsserver, with the
// same client (Node's tls.connect, testdata/node-client.js), and the two
// traces are compared with go-cmp. Where tlsemit deviates from Node on
// purpose, the scenario says so and the test asserts the deviation.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// scenario is one row of the differential table. Its JSON form is what
// node-server.js reads.
type scenario struct {
	Name string `json:"-"`

	// Setup chooses the certificates: "chain" (leaf served with its issuer),
	// "ca-option" (leaf alone, issuer given as the CA option), "leaf-alone"
	// (leaf alone, no CA), "self-signed", "sni-ca" / "sni-noca" (an
	// addContext certificate for sni.test, with and without a CA).
	Setup string `json:"-"`

	OCSP               string `json:"ocsp"`
	Listeners          int    `json:"listeners"`
	Late               bool   `json:"late"`
	RemoveInConnection bool   `json:"removeInConnection"`
	AddInConnection    bool   `json:"addInConnection,omitempty"` // a second 'OCSPRequest' listener, added in the first 'connection'
	SessionStore       bool   `json:"sessionStore,omitempty"`    // 'newSession'/'resumeSession' listeners keeping sessions in memory
	Keylog             bool   `json:"keylog,omitempty"`          // a 'keylog' listener
	HandshakeTimeoutMs int    `json:"handshakeTimeoutMs,omitempty"`
	// ALPN is the server's ALPNProtocols (tlsserver: Config.NextProtos).
	ALPN []string `json:"alpn,omitempty"`
	// RequestCert asks clients for a certificate from the client CA;
	// RejectUnauthorized is Node's for it. tlsserver's Config.ClientAuth
	// is RequireAndVerifyClientCert with RejectUnauthorized, else
	// RequestClientCert, and its 'secureConnection' reports Authorized.
	RequestCert        bool `json:"requestCert,omitempty"`
	RejectUnauthorized bool `json:"rejectUnauthorized,omitempty"`
	// FailingClientCerts makes the clients present, one per connection,
	// the differentialPKI's failing client certificates.
	FailingClientCerts bool `json:"-"`
	// ClientCAs names the client roots given as ca (default "client"),
	// CRLs the CRLs given as crl (Node's option; tlsserver's Options.CRL),
	// both from the differentialPKI. SNIClient, when set, adds a context
	// for "*.test" that verifies clients itself: "ca" (the client CA),
	// "ca-crl" (and the "rev" CRL), "bare" (neither).
	ClientCAs []string `json:"-"`
	CRLs      []string `json:"-"`
	SNIClient string   `json:"-"`
	// Clients presents these differentialPKI client identities, one per
	// connection ("" for none), with Each's other options.
	Clients []string `json:"-"`

	// Filled in by the harness for node-server.js.
	Key      string       `json:"key"`
	Cert     string       `json:"cert"`
	CA       []string     `json:"ca,omitempty"`
	ClientCA []string     `json:"clientCA,omitempty"`
	CRL      []string     `json:"crl,omitempty"`
	Contexts []nodeSNICtx `json:"contexts,omitempty"`

	Client clientOpts `json:"-"`
	// Raw, when set, replaces the Node client: it drives raw TCP clients
	// against the server's port; reported delivers one value per
	// 'tlsClientError' the server emits.
	Raw func(t *testing.T, port int, reported <-chan struct{}) `json:"-"`
	// Deviation, when set, checks the two traces where tlsemit differs from
	// Node on purpose, and then aligns them for the comparison.
	Deviation func(t *testing.T, node, goTrace *trace) `json:"-"`
	// Want, when set, checks Node's trace for what the scenario is about,
	// so that it cannot pass by testing nothing.
	Want func(t *testing.T, node trace) `json:"-"`
}

// sniContext is an addContext certificate with its own CA and CRLs, if
// any.
type sniContext struct {
	cert tls.Certificate
	ca   []*x509.Certificate
	crl  [][]byte
}

type nodeSNICtx struct {
	Host string   `json:"host"`
	Key  string   `json:"key"`
	Cert string   `json:"cert"`
	CA   []string `json:"ca,omitempty"`
	CRL  []string `json:"crl,omitempty"`
}

type clientOpts struct {
	Port        int      `json:"port"`
	Servername  string   `json:"servername,omitempty"`
	CA          []string `json:"ca,omitempty"`
	RequestOCSP bool     `json:"requestOCSP"`
	MaxVersion  string   `json:"maxVersion,omitempty"`
	Connections int      `json:"connections,omitempty"`
	Resume      bool     `json:"resume,omitempty"`
	TimeoutMs   int      `json:"timeoutMs,omitempty"`
	// Each holds tls.connect options for each connection in turn.
	Each []map[string]any `json:"each,omitempty"`
}

// serverEvent is one server event, its arguments summarised. Certificates
// are named ("leaf", "ca", …) instead of shown as hashes.
type serverEvent struct {
	Ev       string `json:"ev"`
	Listener int    `json:"listener,omitempty"`
	Cert     string `json:"cert,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	Code     string `json:"code,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Reused   bool   `json:"reused,omitempty"`
	Label    string `json:"label,omitempty"` // a key-log line's
	ALPN     string `json:"alpn,omitempty"`  // the protocol agreed
	// AuthError and Authorized are a 'secureConnection' socket's
	// authorizationError and authorized (with requestCert; tlsserver's
	// Authorized).
	AuthError  string `json:"authError,omitempty"`
	Authorized bool   `json:"authorized,omitempty"`
}

// clientResult is what node-client.js saw on one connection.
type clientResult struct {
	OK       bool    `json:"ok"`
	OCSP     *string `json:"ocsp"`
	Reused   bool    `json:"reused"`
	Err      *string `json:"err"`
	Protocol string  `json:"protocol,omitempty"`
	ALPN     string  `json:"alpn,omitempty"`
}

type trace struct {
	Server []serverEvent
	Client []clientResult
}

const testStaple = "staple"

var errBoom = errors.New("boom")

// differentialPKI holds the certificates every scenario draws from, written
// as PEM files for Node and kept as Go values for tlsserver.
type differentialPKI struct {
	dir        string
	ca         *testpki.CA
	leaf, sni  *testpki.Leaf
	selfSigned tls.Certificate
	selfPaths  [2]string // cert, key
	names      map[string]string
	clientCA   *testpki.CA
	// failingClients are tls.connect options presenting a client
	// certificate that does not verify, one for each clientCertCodes.
	failingClients []map[string]any
	// The revocation scenarios': more client CAs, client identities
	// (tls.connect options) and CRLs (PEM files and DER), by name.
	clientCAs map[string]*testpki.CA
	clients   map[string]map[string]any
	crlPaths  map[string]string
	crlDER    map[string][]byte
}

func newDifferentialPKI(t *testing.T) *differentialPKI {
	t.Helper()
	p := &differentialPKI{dir: t.TempDir(), names: map[string]string{}}
	p.ca = testpki.NewCA(t, "Differential Root")
	p.leaf = p.ca.Issue(t, testpki.LeafOptions{})
	p.sni = p.ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"sni.test"}})
	p.selfSigned, p.selfPaths = selfSigned(t, p.dir)
	p.names[shortHash(p.ca.DER)] = "ca"
	p.names[shortHash(p.leaf.DER)] = "leaf"
	p.names[shortHash(p.sni.DER)] = "sni"
	p.names[shortHash(p.selfSigned.Certificate[0])] = "self-signed"
	p.clientCA = testpki.NewCA(t, "Differential Client Root")
	p.failingClients = failingClientCerts(t, p.clientCA)
	p.revocationPKI(t)
	return p
}

// revocationPKI makes what the CRL scenarios use: client roots "client"
// and "client2", "inter" (an intermediate of "client"); clients "good"
// and "revoked" of "client", "good2" of "client2", "inter-leaf" of
// "inter" (sent alone), "revoked-server-eku" and "revoked-expired" of
// "client"; CRLs "rev" ("client"'s, listing the three "revoked…"),
// "expired", "future" (of "client", empty), "inter-empty", and
// "rev-inter" ("client"'s, listing "inter").
func (p *differentialPKI) revocationPKI(t *testing.T) {
	client2 := testpki.NewCA(t, "Differential Client Root Two")
	inter := p.clientCA.Intermediate(t, "Differential Client Intermediate")
	p.clientCAs = map[string]*testpki.CA{"client": p.clientCA, "client2": client2, "inter": inter}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.clients = map[string]map[string]any{}
	leaves := map[string]*testpki.Leaf{}
	now := time.Now()
	for _, c := range []struct {
		name string
		ca   *testpki.CA
		o    testpki.LeafOptions
	}{
		{"good", p.clientCA, testpki.LeafOptions{}}, {"revoked", p.clientCA, testpki.LeafOptions{}},
		{"good2", client2, testpki.LeafOptions{}}, {"inter-leaf", inter, testpki.LeafOptions{}},
		{"revoked-server-eku", p.clientCA, testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
		{"revoked-expired", p.clientCA, testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}},
	} {
		c.o.CommonName = c.name
		if c.o.ExtKeyUsage == nil {
			c.o.ExtKeyUsage = eku
		}
		l := c.ca.Issue(t, c.o)
		leaves[c.name] = l
		p.clients[c.name] = map[string]any{"key": string(testpki.KeyPEM(l.Key)), "cert": string(testpki.CertPEM(l.DER))}
	}
	p.crlPaths, p.crlDER = map[string]string{}, map[string][]byte{}
	revoked := []*big.Int{leaves["revoked"].Cert.SerialNumber, leaves["revoked-server-eku"].Cert.SerialNumber, leaves["revoked-expired"].Cert.SerialNumber}
	for name, der := range map[string][]byte{
		"rev":         p.clientCA.CRL(t, testpki.CRLOptions{Revoked: revoked}),
		"expired":     p.clientCA.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}),
		"future":      p.clientCA.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)}),
		"inter-empty": inter.CRL(t, testpki.CRLOptions{}),
		"rev-inter":   p.clientCA.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{inter.Cert.SerialNumber}}),
	} {
		path := filepath.Join(p.dir, "crl-"+name+".pem")
		if err := os.WriteFile(path, testpki.CRLPEM(der), 0o600); err != nil {
			t.Fatal(err)
		}
		p.crlPaths[name], p.crlDER[name] = path, der
	}
}

// clientCertCodes are the codes of failingClientCerts' certificates, in
// order: Node's authorizationError for each.
var clientCertCodes = []string{
	"UNABLE_TO_VERIFY_LEAF_SIGNATURE",
	"SELF_SIGNED_CERT_IN_CHAIN",
	"UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
	"CERT_HAS_EXPIRED",
	"CERT_NOT_YET_VALID",
	"INVALID_PURPOSE",
	"DEPTH_ZERO_SELF_SIGNED_CERT",
}

// failingClientCerts issues client certificates that do not verify against
// ca, one per failure (clientCertCodes), as tls.connect options.
func failingClientCerts(t *testing.T, ca *testpki.CA) []map[string]any {
	other := testpki.NewCA(t, "Differential Stranger Root")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	now := time.Now()
	opts := func(l *testpki.Leaf, withChain bool) map[string]any {
		var certs []byte
		for _, der := range l.TLSCertificate(withChain).Certificate {
			certs = append(certs, testpki.CertPEM(der)...)
		}
		return map[string]any{"key": string(testpki.KeyPEM(l.Key)), "cert": string(certs)}
	}
	issue := func(ca *testpki.CA, o testpki.LeafOptions) *testpki.Leaf {
		if o.ExtKeyUsage == nil {
			o.ExtKeyUsage = eku
		}
		o.CommonName = "client"
		return ca.Issue(t, o)
	}
	self := testpki.NewCA(t, "Differential Self-Signed Client")
	return []map[string]any{
		opts(issue(other, testpki.LeafOptions{}), false),
		opts(issue(other, testpki.LeafOptions{}), true),
		opts(issue(other.Intermediate(t, "Differential Stranger Intermediate"), testpki.LeafOptions{}), true),
		opts(issue(ca, testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}), false),
		opts(issue(ca, testpki.LeafOptions{NotBefore: now.Add(24 * time.Hour)}), false),
		opts(issue(ca, testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), false),
		{"key": string(testpki.KeyPEM(self.Key)), "cert": string(testpki.CertPEM(self.DER))},
	}
}

func selfSigned(t *testing.T, dir string) (tls.Certificate, [2]string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	certPath, keyPath := filepath.Join(dir, "self.crt"), filepath.Join(dir, "self.key")
	if err := os.WriteFile(certPath, testpki.CertPEM(der), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, testpki.KeyPEM(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, [2]string{certPath, keyPath}
}

func shortHash(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])[:16]
}

func (p *differentialPKI) name(hash string) string {
	if hash == "" {
		return ""
	}
	if n, ok := p.names[hash]; ok {
		return n
	}
	return "unknown:" + hash
}

// configure fills in the certificate paths for Node and returns the
// equivalent tlsserver options and contexts.
func (p *differentialPKI) configure(t *testing.T, sc *scenario) (tlsserver.Options, map[string]sniContext) {
	t.Helper()
	caPath, _ := p.ca.WritePEM(p.dir)
	leafCert, leafKey := p.leaf.WritePEM(p.dir)
	var opts tlsserver.Options
	contexts := map[string]sniContext{}
	switch sc.Setup {
	case "chain":
		sc.Cert, sc.Key = p.leaf.WriteChainPEM(p.dir), leafKey
		opts.Certificates = []tls.Certificate{p.leaf.TLSCertificate(true)}
	case "ca-option":
		sc.Cert, sc.Key, sc.CA = leafCert, leafKey, []string{caPath}
		opts.Certificates = []tls.Certificate{p.leaf.TLSCertificate(false)}
		opts.CA = []*x509.Certificate{p.ca.Cert}
	case "leaf-alone":
		sc.Cert, sc.Key = leafCert, leafKey
		opts.Certificates = []tls.Certificate{p.leaf.TLSCertificate(false)}
	case "self-signed":
		sc.Cert, sc.Key = p.selfPaths[0], p.selfPaths[1]
		opts.Certificates = []tls.Certificate{p.selfSigned}
	case "sni-ca", "sni-noca":
		sc.Cert, sc.Key = leafCert, leafKey
		opts.Certificates = []tls.Certificate{p.leaf.TLSCertificate(false)}
		sniCert, sniKey := p.sni.WritePEM(p.dir)
		ctx := nodeSNICtx{Host: "*.test", Cert: sniCert, Key: sniKey}
		c := sniContext{cert: p.sni.TLSCertificate(false)}
		if sc.Setup == "sni-ca" {
			ctx.CA = []string{caPath}
			c.ca = []*x509.Certificate{p.ca.Cert}
		}
		sc.Contexts = []nodeSNICtx{ctx}
		contexts["*.test"] = c
	default:
		t.Fatalf("unknown setup %q", sc.Setup)
	}
	if sc.HandshakeTimeoutMs > 0 {
		opts.HandshakeTimeout = time.Duration(sc.HandshakeTimeoutMs) * time.Millisecond
	}
	if len(sc.ALPN) > 0 || sc.RequestCert {
		opts.Config = &tls.Config{NextProtos: sc.ALPN}
	}
	if sc.RequestCert {
		names := sc.ClientCAs
		if len(names) == 0 {
			names = []string{"client"}
		}
		for _, n := range names {
			path, _ := p.clientCAs[n].WritePEM(p.dir)
			sc.ClientCA = append(sc.ClientCA, path)
			opts.CA = append(opts.CA, p.clientCAs[n].Cert)
		}
		opts.Config.ClientAuth = tls.RequestClientCert
		if sc.RejectUnauthorized {
			opts.Config.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	for _, n := range sc.CRLs {
		sc.CRL = append(sc.CRL, p.crlPaths[n])
		opts.CRL = append(opts.CRL, p.crlDER[n])
	}
	if sc.SNIClient != "" {
		sniCert, sniKey := p.sni.WritePEM(p.dir)
		ctx := nodeSNICtx{Host: "*.test", Cert: sniCert, Key: sniKey}
		c := sniContext{cert: p.sni.TLSCertificate(false)}
		if sc.SNIClient != "bare" {
			path, _ := p.clientCA.WritePEM(p.dir)
			ctx.CA, c.ca = []string{path}, []*x509.Certificate{p.clientCA.Cert}
		}
		if sc.SNIClient == "ca-crl" {
			ctx.CRL, c.crl = []string{p.crlPaths["rev"]}, [][]byte{p.crlDER["rev"]}
		}
		sc.Contexts = append(sc.Contexts, ctx)
		contexts["*.test"] = c
	}
	for i, name := range sc.Clients {
		for len(sc.Client.Each) <= i {
			sc.Client.Each = append(sc.Client.Each, map[string]any{})
		}
		each := maps.Clone(sc.Client.Each[i])
		maps.Copy(each, p.clients[name])
		sc.Client.Each[i] = each
	}
	if len(sc.Clients) > 0 {
		sc.Client.Connections = len(sc.Clients)
	}
	return opts, contexts
}

// runNodeClient runs node-client.js against port and returns one result per
// connection.
func runNodeClient(t *testing.T, node string, o clientOpts) []clientResult {
	t.Helper()
	arg, _ := json.Marshal(o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "testdata/node-client.js", string(arg)).Output()
	if err != nil {
		t.Fatalf("node-client.js: %v\n%s", err, exitStderr(err))
	}
	var res []clientResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r clientResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("node-client.js printed %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// runNodeServer runs the scenario against Node's tls.Server.
func runNodeServer(t *testing.T, node string, p *differentialPKI, sc scenario) trace {
	t.Helper()
	arg, _ := json.Marshal(sc)
	cmd := exec.Command(node, "testdata/node-server.js", string(arg))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("node-server.js: %v\n%s", err, stderr.String())
		}
	}()
	lines := make(chan serverEvent, 64)
	ports := make(chan int, 1)
	reported := make(chan struct{}, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				serverEvent
				Port int `json:"port"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			if ev.Ev == "listening" {
				ports <- ev.Port
				continue
			}
			if ev.Ev == "tlsClientError" {
				reported <- struct{}{}
			}
			lines <- ev.serverEvent
		}
	}()
	var port int
	select {
	case port = <-ports:
	case <-time.After(10 * time.Second):
		t.Fatalf("node-server.js did not start: %s", stderr.String())
	}
	var tr trace
	tr.Client = sc.drive(t, node, port, reported)
	fmt.Fprintln(stdin, "settle")
	for ev := range lines {
		if ev.Ev == "settled" {
			break
		}
		tr.Server = append(tr.Server, p.named(ev))
	}
	return tr
}

// drive runs the scenario's clients against port.
func (sc *scenario) drive(t *testing.T, node string, port int, reported <-chan struct{}) []clientResult {
	if sc.Raw != nil {
		sc.Raw(t, port, reported)
		return nil
	}
	co := sc.Client
	co.Port = port
	return runNodeClient(t, node, co)
}

func (p *differentialPKI) named(ev serverEvent) serverEvent {
	ev.Cert, ev.Issuer = p.name(ev.Cert), p.name(ev.Issuer)
	if ev.Ev == "OCSPRequest" && ev.Issuer == "" {
		ev.Issuer = "null"
	}
	return ev
}

// runGoServer runs the scenario against tlsserver with listeners that do
// what node-server.js's do.
func runGoServer(t *testing.T, node string, p *differentialPKI, sc scenario, opts tlsserver.Options, contexts map[string]sniContext) trace {
	t.Helper()
	srv, err := tlsserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for host, c := range contexts {
		if err := srv.AddContext(host, tlsserver.SecureContext{Certificates: []tls.Certificate{c.cert}, CA: c.ca, CRL: c.crl}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu           sync.Mutex
		recorded     []serverEvent
		pendingAfter tlsserver.OCSPCallback
		shut         = make(chan error, 1)
	)
	record := func(ev serverEvent) {
		mu.Lock()
		recorded = append(recorded, ev)
		mu.Unlock()
	}
	var ids []events.ID
	listener := func(index int) func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		return func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
			ev := serverEvent{Ev: "OCSPRequest", Listener: index, Cert: p.name(shortHash(cert)), Issuer: "null"}
			if issuer != nil {
				ev.Issuer = p.name(shortHash(issuer))
			}
			record(ev)
			if index > 0 {
				return
			}
			staple := []byte(testStaple)
			switch sc.OCSP {
			case "bytes":
				cb(nil, staple)
			case "async-bytes":
				time.AfterFunc(20*time.Millisecond, func() { cb(nil, staple) })
			case "null":
				cb(nil, nil)
			case "empty":
				cb(nil, []byte{})
			case "error":
				cb(errBoom, nil)
			case "twice-before":
				cb(nil, staple)
				cb(nil, staple)
			case "twice-after":
				cb(nil, staple)
				mu.Lock()
				pendingAfter = cb
				mu.Unlock()
			case "close-then-bytes":
				// server.close() (here Shutdown, which returns later),
				// then the answer once it has stopped accepting.
				go func() {
					shut <- srv.Shutdown(context.Background())
				}()
				go func() {
					for srv.Addr() != nil {
						time.Sleep(time.Millisecond)
					}
					cb(nil, staple)
				}()
			case "never":
			default:
				t.Errorf("unknown ocsp mode %q", sc.OCSP)
			}
		}
	}
	var added bool
	addListeners := func() {
		n := max(sc.Listeners, 1)
		for i := range n {
			ids = append(ids, srv.OnOCSPRequest(listener(i)))
		}
		added = true
	}
	if !sc.Late {
		addListeners()
	}
	var addedInConnection bool
	srv.OnConnection(func(c net.Conn) {
		record(serverEvent{Ev: "connection"})
		if sc.Late && !added {
			addListeners()
		}
		if sc.RemoveInConnection {
			for _, id := range ids {
				srv.Off(tlsserver.EventOCSPRequest, id)
			}
			ids = nil
		}
		if sc.AddInConnection && !addedInConnection {
			addedInConnection = true
			srv.OnOCSPRequest(listener(len(ids)))
		}
	})
	if sc.SessionStore {
		var store sync.Map
		srv.OnNewSession(func(id, data []byte, done func()) {
			record(serverEvent{Ev: "newSession"})
			store.Store(string(id), data)
			done()
		})
		srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
			record(serverEvent{Ev: "resumeSession"})
			data, _ := store.Load(string(id))
			b, _ := data.([]byte)
			cb(nil, b)
		})
	}
	if sc.Keylog {
		srv.OnKeylog(func(line []byte, _ net.Conn) {
			record(serverEvent{Ev: "keylog", Label: strings.Fields(string(line))[0]})
		})
	}
	srv.OnSecureConnection(func(c *tls.Conn) {
		st := c.ConnectionState()
		ev := serverEvent{Ev: "secureConnection", Protocol: nodeProtocol(st.Version), Reused: st.DidResume, ALPN: st.NegotiatedProtocol}
		if sc.RequestCert {
			ok, err := tlsserver.Authorized(c)
			ev.Authorized, ev.AuthError = ok, tlsserver.Code(err)
		}
		record(ev)
		mu.Lock()
		cb := pendingAfter
		pendingAfter = nil
		mu.Unlock()
		if cb != nil {
			cb(nil, []byte(testStaple))
		}
		// As node-server.js: the client closes first, once it has its session.
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	})
	reported := make(chan struct{}, 64)
	srv.OnTLSClientError(func(err error, c net.Conn) {
		record(serverEvent{Ev: "tlsClientError", Code: errorCode(err)})
		reported <- struct{}{}
	})
	srv.OnClose(func() { record(serverEvent{Ev: "close"}) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var tr trace
	tr.Client = sc.drive(t, node, srv.Addr().(*net.TCPAddr).Port, reported)
	if sc.OCSP == "close-then-bytes" {
		if err := <-shut; err != nil {
			t.Errorf("Shutdown called in 'OCSPRequest': %v", err)
		}
	} else {
		// As node-server.js's settle: until no connection is left (or
		// 3 s), with every event of theirs emitted. Node emits 'close'
		// only when close() was called: the one Shutdown emits here is
		// left out.
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		srv.Shutdown(sctx)
		scancel()
		mu.Lock()
		recorded = without(recorded, func(ev serverEvent) bool { return ev.Ev == "close" })
		mu.Unlock()
	}
	mu.Lock()
	tr.Server = append(tr.Server, recorded...)
	mu.Unlock()
	return tr
}

func nodeProtocol(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return tls.VersionName(v)
}

// errorCode summarises a 'tlsClientError' error as node-server.js does: the
// Node code where there is one, else "user:" and the message.
func errorCode(err error) string {
	if code := tlsserver.Code(err); code != "" {
		return code
	}
	if errors.Is(err, errBoom) {
		return "user:boom"
	}
	return "other:" + err.Error()
}

func differentialScenarios() []scenario {
	v12 := clientOpts{RequestOCSP: true, MaxVersion: "TLSv1.2"}
	v13 := clientOpts{RequestOCSP: true}
	return []scenario{
		{Name: "staple-bytes", Setup: "chain", OCSP: "bytes", Client: v13},
		{Name: "staple-bytes-async", Setup: "chain", OCSP: "async-bytes", Client: v13},
		{Name: "staple-null", Setup: "chain", OCSP: "null", Client: v13},
		{Name: "staple-empty", Setup: "chain", OCSP: "empty", Client: v13},
		{Name: "no-status-request", Setup: "chain", OCSP: "bytes", Client: clientOpts{}},
		{Name: "tls12-staple", Setup: "chain", OCSP: "bytes", Client: v12},
		{Name: "callback-error", Setup: "chain", OCSP: "error", Client: v13},
		{Name: "callback-twice-before-handshake", Setup: "chain", OCSP: "twice-before", Client: v13},
		{Name: "callback-twice-after-handshake", Setup: "chain", OCSP: "twice-after", Client: v13,
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node reports the second call on the socket's own 'error'
				// event; *tls.Conn has none, so tlsserver reports it as
				// 'tlsClientError'.
				for i, ev := range node.Server {
					if ev.Ev == "socketError" && ev.Code == "ERR_MULTIPLE_CALLBACK" {
						node.Server[i].Ev = "tlsClientError"
						return
					}
				}
				t.Errorf("Node no longer reports ERR_MULTIPLE_CALLBACK on the socket: %+v", node.Server)
			}},
		{Name: "callback-never", Setup: "chain", OCSP: "never", HandshakeTimeoutMs: 300,
			Client: clientOpts{RequestOCSP: true, TimeoutMs: 1500},
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node reports the timeout but leaves the socket open, so its
				// client waits until it gives up; tlsserver destroys it.
				if got := node.Client[0].Err; got == nil || *got != "timeout" {
					t.Errorf("Node's client: want it left waiting (timeout), got %+v", node.Client[0])
				}
				if got := goTrace.Client[0].Err; got == nil || *got == "timeout" {
					t.Errorf("tlsserver's client: want the connection destroyed, got %+v", goTrace.Client[0])
				}
				node.Client[0].Err = goTrace.Client[0].Err
			}},
		{Name: "late-listener", Setup: "chain", OCSP: "bytes", Late: true,
			Client: clientOpts{RequestOCSP: true, Connections: 2}},
		{Name: "removed-in-connection", Setup: "chain", OCSP: "bytes", RemoveInConnection: true, Client: v13},
		{Name: "two-listeners", Setup: "chain", OCSP: "bytes", Listeners: 2, Client: v13},
		{Name: "issuer-from-ca-option", Setup: "ca-option", OCSP: "bytes", Client: v13},
		{Name: "leaf-alone-no-issuer", Setup: "leaf-alone", OCSP: "bytes", Client: v13},
		{Name: "self-signed", Setup: "self-signed", OCSP: "bytes", Client: v13},
		{Name: "sni-context-with-ca", Setup: "sni-ca", OCSP: "bytes",
			Client: clientOpts{RequestOCSP: true, Servername: "sni.test"}},
		{Name: "sni-context-without-ca", Setup: "sni-noca", OCSP: "bytes",
			Client: clientOpts{RequestOCSP: true, Servername: "sni.test"}},
		{Name: "sni-default-context", Setup: "sni-ca", OCSP: "bytes",
			Client: clientOpts{RequestOCSP: true, Servername: "other.example"}},
		{Name: "resumption-tls13", Setup: "chain", OCSP: "bytes",
			Client: clientOpts{RequestOCSP: true, Connections: 2, Resume: true}},
		{Name: "resumption-tls12", Setup: "chain", OCSP: "bytes",
			Client: clientOpts{RequestOCSP: true, Connections: 2, Resume: true, MaxVersion: "TLSv1.2"}},
		// server.close() while a handshake is parked on 'OCSPRequest': the
		// handshake completes with its staple and is delivered; the next
		// client is refused; 'close' follows the connection's end.
		{Name: "close-with-parked-handshake", Setup: "chain", OCSP: "close-then-bytes",
			Client: clientOpts{RequestOCSP: true, Connections: 2},
			Want: func(t *testing.T, node trace) {
				c := node.Client
				if len(c) != 2 || !c[0].OK || c[0].OCSP == nil || *c[0].OCSP != testStaple ||
					c[1].Err == nil || *c[1].Err != "ECONNREFUSED" || !hasEvent(&node, serverEvent{Ev: "close"}) {
					t.Errorf("Node: want the parked handshake stapled, the next client refused, 'close': %+v", node)
				}
			}},
		// Item 7: clients that fail before the handshake completes, and
		// the code each failure gets.
		{Name: "client-error-codes", Setup: "chain", OCSP: "bytes", Raw: rawFailingClients},
		// Issue 16: ALPN with no protocol in common, and client
		// certificates, with Node's codes.
		{Name: "alpn-h2-server-http11-client", Setup: "chain", OCSP: "bytes", ALPN: []string{"h2"},
			Client: clientOpts{RequestOCSP: true, Connections: 2, Each: []map[string]any{
				{"ALPNProtocols": []string{"http/1.1"}}, {"ALPNProtocols": []string{"http/1.1"}, "maxVersion": "TLSv1.2"}}},
			Deviation: alpnRefusedBeforeOCSP},
		{Name: "alpn-no-protocol-in-common", Setup: "chain", OCSP: "bytes", ALPN: []string{"h2", "http/1.1"},
			Client: clientOpts{RequestOCSP: true, Connections: 2, Each: []map[string]any{
				{"ALPNProtocols": []string{"h3"}}, {"ALPNProtocols": []string{"h3"}, "maxVersion": "TLSv1.2"}}},
			Deviation: alpnRefusedBeforeOCSP},
		{Name: "alpn-agreed", Setup: "chain", OCSP: "bytes", ALPN: []string{"h2", "http/1.1"},
			Client: clientOpts{RequestOCSP: true, Connections: 3, Each: []map[string]any{
				{"ALPNProtocols": []string{"spdy/3", "http/1.1"}}, {"ALPNProtocols": []string{"h2"}, "maxVersion": "TLSv1.2"}, {}}}},
		{Name: "client-cert-missing", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			Client: clientOpts{RequestOCSP: true, Connections: 2, Each: []map[string]any{{}, {"maxVersion": "TLSv1.2"}}}},
		{Name: "client-cert-rejected", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			FailingClientCerts: true, Client: v13,
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node destroys the socket of a client whose certificate
				// does not verify after the handshake: its 'tlsClientError'
				// says only ECONNRESET, and the client, TLS 1.3, first sees
				// the handshake complete. crypto/tls refuses the
				// certificate in the handshake with an alert, and tlsemit's
				// code is the reason Node keeps in the socket's
				// authorizationError (client-cert-authorization-error).
				if got := errorCodes(node); !slices.Equal(got, slices.Repeat([]string{"ECONNRESET"}, len(clientCertCodes))) {
					t.Errorf("Node's codes %v, want ECONNRESET for each", got)
				}
				if got := errorCodes(goTrace); !slices.Equal(got, clientCertCodes) {
					t.Errorf("tlsemit's codes %v, want %v", got, clientCertCodes)
				}
				if len(node.Client) != len(clientCertCodes) || len(goTrace.Client) != len(clientCertCodes) {
					t.Fatalf("want %d clients: node %+v, tlsemit %+v", len(clientCertCodes), node.Client, goTrace.Client)
				}
				for i := range clientCertCodes {
					if n := node.Client[i]; !n.OK {
						t.Errorf("Node's client %d: want the handshake completed, got %+v", i, n)
					}
					if c := goTrace.Client[i]; c.Err == nil || !strings.Contains(*c.Err, "_ALERT_") {
						t.Errorf("tlsemit's client %d: want an alert, got %+v", i, c)
					}
				}
				*node = *goTrace
			}},
		{Name: "client-cert-authorization-error", Setup: "chain", OCSP: "bytes", RequestCert: true,
			FailingClientCerts: true, Client: v13,
			// With rejectUnauthorized false Node serves each client and
			// says why it is not authorized; so does tlsserver with
			// RequestClientCert, through Authorized.
			Want: wantAuthErrors(clientCertCodes...)},

		// Issue 18: Node's crl. With rejectUnauthorized false every client
		// is served, and authorized or not with Node's code.
		{Name: "crl-authorization", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"client", "client2"},
			CRLs: []string{"rev"}, Clients: []string{"good", "revoked", "good2", ""}, Client: v13,
			Want: wantAuthErrors("", "CERT_REVOKED", "UNABLE_TO_GET_CRL", "UNABLE_TO_GET_ISSUER_CERT")},
		{Name: "crl-authorization-tls12", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"client", "client2"},
			CRLs: []string{"rev"}, Clients: []string{"good", "revoked", "good2"}, Client: v12,
			Want: wantAuthErrors("", "CERT_REVOKED", "UNABLE_TO_GET_CRL")},
		{Name: "crl-expired", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"expired"},
			Clients: []string{"good", "revoked"}, Client: v13, Want: wantAuthErrors("CRL_HAS_EXPIRED", "CRL_HAS_EXPIRED")},
		{Name: "crl-not-yet-valid", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"future"},
			Clients: []string{"good"}, Client: v13, Want: wantAuthErrors("CRL_NOT_YET_VALID")},
		{Name: "crl-option-absent", Setup: "chain", OCSP: "bytes", RequestCert: true,
			Clients: []string{"revoked"}, Client: v13, Want: wantAuthErrors("")},
		{Name: "crl-intermediate-revoked", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"client", "inter"},
			CRLs: []string{"rev-inter", "inter-empty"}, Clients: []string{"inter-leaf"}, Client: v13, Want: wantAuthErrors("CERT_REVOKED")},
		{Name: "crl-intermediate-good", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"client", "inter"},
			CRLs: []string{"rev", "inter-empty"}, Clients: []string{"inter-leaf", "revoked"}, Client: v13, Want: wantAuthErrors("", "CERT_REVOKED")},
		{Name: "crl-intermediate-crl-missing", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"client", "inter"},
			CRLs: []string{"rev"}, Clients: []string{"inter-leaf"}, Client: v13, Want: wantAuthErrors("UNABLE_TO_GET_CRL")},
		// An intermediate in ca without its root: Node refuses the chain,
		// which does not reach a self-signed root; with crl, as
		// UNABLE_TO_GET_CRL, and so does tlsemit (the intermediate's
		// revocation cannot be checked). Without crl crypto/x509 trusts
		// the intermediate as an anchor (docs/porting-from-node.md).
		{Name: "crl-intermediate-without-root", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"inter"},
			CRLs: []string{"inter-empty"}, Clients: []string{"inter-leaf"}, Client: v13, Want: wantAuthErrors("UNABLE_TO_GET_CRL")},
		{Name: "crl-intermediate-without-root-rejected", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			ClientCAs: []string{"inter"}, CRLs: []string{"inter-empty"}, Clients: []string{"inter-leaf"}, Client: v13,
			Deviation: refusedKeepingReason("UNABLE_TO_GET_CRL")},
		{Name: "intermediate-without-root", Setup: "chain", OCSP: "bytes", RequestCert: true, ClientCAs: []string{"inter"},
			Clients: []string{"inter-leaf"}, Client: v13,
			Deviation: func(t *testing.T, node, goTrace *trace) {
				if got := authErrors(node); !slices.Equal(got, []string{"UNABLE_TO_GET_ISSUER_CERT"}) {
					t.Errorf("Node's authorizationError %q, want UNABLE_TO_GET_ISSUER_CERT", got)
				}
				if got := authErrors(goTrace); !slices.Equal(got, []string{""}) {
					t.Errorf("tlsemit's %q, want authorized", got)
				}
				*node = *goTrace
			}},
		// A certificate that does not verify is checked against the CRLs
		// too, on the chain Node builds: Node reports the last failure it
		// meets, and revocation comes after the chain and its purpose,
		// before the times.
		{Name: "crl-failing-clients", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"rev"},
			FailingClientCerts: true, Client: v13, Want: wantAuthErrors("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_CRL",
				"UNABLE_TO_GET_CRL", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "INVALID_PURPOSE", "UNABLE_TO_GET_CRL")},
		{Name: "crl-failing-clients-rejected", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			CRLs: []string{"rev"}, FailingClientCerts: true, Client: v13,
			Deviation: refusedKeepingReason("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_CRL",
				"UNABLE_TO_GET_CRL", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "INVALID_PURPOSE", "UNABLE_TO_GET_CRL")},
		{Name: "crl-revoked-and-failing", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"rev"},
			Clients: []string{"revoked-server-eku", "revoked-expired"}, Client: v13,
			Want: wantAuthErrors("CERT_REVOKED", "CERT_HAS_EXPIRED")},
		// An SNI context verifies its clients with its own ca and crl.
		{Name: "crl-sni-context-ca-without-crl", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"rev"},
			SNIClient: "ca", Clients: []string{"revoked", "revoked"}, Client: clientOpts{RequestOCSP: true,
				Each: []map[string]any{{"servername": "sni.test"}, {}}},
			Want: wantAuthErrors("", "CERT_REVOKED")},
		{Name: "crl-sni-context-crl", Setup: "chain", OCSP: "bytes", RequestCert: true, SNIClient: "ca-crl",
			Clients: []string{"revoked", "revoked", "good"}, Client: clientOpts{RequestOCSP: true,
				Each: []map[string]any{{"servername": "sni.test"}, {}, {"servername": "sni.test"}}},
			Want: wantAuthErrors("CERT_REVOKED", "", "")},
		{Name: "crl-sni-context-without-ca", Setup: "chain", OCSP: "bytes", RequestCert: true, CRLs: []string{"rev"},
			SNIClient: "bare", Clients: []string{"revoked", "good"}, Client: clientOpts{RequestOCSP: true,
				Each: []map[string]any{{"servername": "sni.test"}, {"servername": "sni.test"}}},
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node verifies the clients of a context without ca
				// against its bundled public roots: every private client
				// fails. tlsemit uses the default context's CA and CRL.
				if got := authErrors(node); !slices.Equal(got, []string{"UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"}) {
					t.Errorf("Node's authorizationError %q, want UNABLE_TO_VERIFY_LEAF_SIGNATURE twice", got)
				}
				if got := authErrors(goTrace); !slices.Equal(got, []string{"CERT_REVOKED", ""}) {
					t.Errorf("tlsemit's %q, want CERT_REVOKED, then authorized", got)
				}
				*node = *goTrace
			}},
		// With rejectUnauthorized true Node destroys the socket after the
		// handshake and 'tlsClientError' says only ECONNRESET; tlsemit
		// refuses in the handshake and keeps the reason.
		{Name: "crl-rejected", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			ClientCAs: []string{"client", "client2"}, CRLs: []string{"rev"},
			Clients: []string{"revoked", "revoked", "good2", "good"}, Client: clientOpts{RequestOCSP: true,
				Each: []map[string]any{{}, {"maxVersion": "TLSv1.2"}, {}, {}}},
			Deviation: refusedKeepingReason("CERT_REVOKED", "CERT_REVOKED", "UNABLE_TO_GET_CRL")},
		{Name: "crl-rejected-expired", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			CRLs: []string{"expired"}, Clients: []string{"good"}, Client: v13,
			Deviation: refusedKeepingReason("CRL_HAS_EXPIRED")},
		{Name: "crl-rejected-not-yet-valid", Setup: "chain", OCSP: "bytes", RequestCert: true, RejectUnauthorized: true,
			CRLs: []string{"future"}, Clients: []string{"good"}, Client: v13,
			Deviation: refusedKeepingReason("CRL_NOT_YET_VALID")},

		// What porting from Node trips on (docs/porting-from-node.md):
		// each scenario asserts how tlsemit differs, then aligns.
		{Name: "listener-added-in-connection", Setup: "chain", OCSP: "bytes", AddInConnection: true, Client: v13,
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node enables 'OCSPRequest' per socket and then calls every
				// listener present at the ClientHello; tlsemit calls only
				// those registered when the handshake began.
				if !hasEvent(node, serverEvent{Ev: "OCSPRequest", Listener: 1, Cert: "leaf", Issuer: "ca"}) ||
					hasEvent(goTrace, serverEvent{Ev: "OCSPRequest", Listener: 1, Cert: "leaf", Issuer: "ca"}) {
					t.Errorf("want listener 1 called by Node only: node %+v, tlsemit %+v", node.Server, goTrace.Server)
				}
				node.Server = without(node.Server, func(ev serverEvent) bool { return ev.Ev == "OCSPRequest" && ev.Listener == 1 })
			}},
		{Name: "tls12-session-id-resumption", Setup: "chain", OCSP: "bytes", SessionStore: true,
			Client: clientOpts{RequestOCSP: true, MaxVersion: "TLSv1.2", Connections: 2, Resume: true,
				Each: []map[string]any{{"secureOptions": sslOpNoTicket}, {"secureOptions": sslOpNoTicket}}},
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node resumes by session ID through 'newSession' and
				// 'resumeSession'; crypto/tls has no session IDs: a client
				// that refuses tickets never resumes.
				if len(node.Client) != 2 || !node.Client[1].Reused || !hasEvent(node, serverEvent{Ev: "newSession"}) {
					t.Errorf("Node did not resume by session ID: %+v", node)
				}
				if len(goTrace.Client) != 2 || goTrace.Client[1].Reused || countEvents(goTrace, "OCSPRequest") != 2 {
					t.Errorf("tlsemit: want two full handshakes, each with 'OCSPRequest': %+v", goTrace)
				}
				*node = *goTrace
			}},
		{Name: "tls12-tickets-new-session", Setup: "chain", OCSP: "bytes", SessionStore: true,
			Client: clientOpts{RequestOCSP: true, MaxVersion: "TLSv1.2", Connections: 2, Resume: true},
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// Node resumes a ticket client without 'newSession' or
				// 'resumeSession'; with a 'newSession' listener tlsemit
				// issues every ticket through it (and resolves it through
				// 'resumeSession'), on every TLS 1.2 handshake.
				if countEvents(node, "newSession")+countEvents(node, "resumeSession") != 0 {
					t.Errorf("Node: %+v", node.Server)
				}
				if countEvents(goTrace, "newSession") != 2 || countEvents(goTrace, "resumeSession") != 1 {
					t.Errorf("tlsemit: want 'newSession' on both handshakes, 'resumeSession' on the second: %+v", goTrace.Server)
				}
				goTrace.Server = without(goTrace.Server, func(ev serverEvent) bool { return ev.Ev == "newSession" || ev.Ev == "resumeSession" })
			}},
		{Name: "keylog-tls13", Setup: "chain", OCSP: "bytes", Keylog: true, Client: v13,
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// OpenSSL also logs EXPORTER_SECRET; crypto/tls does not.
				// The lines come in another order.
				n, g := keylogLabels(node), keylogLabels(goTrace)
				want := append(slices.Clone(g), "EXPORTER_SECRET")
				slices.Sort(want)
				if len(g) != 4 || !slices.Equal(n, want) {
					t.Errorf("keylog labels: Node %v, tlsemit %v", n, g)
				}
				isKeylog := func(ev serverEvent) bool { return ev.Ev == "keylog" }
				node.Server, goTrace.Server = without(node.Server, isKeylog), without(goTrace.Server, isKeylog)
			}},
		{Name: "keylog-tls12-resumed", Setup: "chain", OCSP: "bytes", Keylog: true,
			Client: clientOpts{RequestOCSP: true, MaxVersion: "TLSv1.2", Connections: 2, Resume: true},
			Deviation: func(t *testing.T, node, goTrace *trace) {
				// OpenSSL logs CLIENT_RANDOM for a resumed TLS 1.2
				// handshake too; crypto/tls only for a full one.
				if countEvents(node, "keylog") != 2 || countEvents(goTrace, "keylog") != 1 {
					t.Errorf("keylog lines: Node %v, tlsemit %v", keylogLabels(node), keylogLabels(goTrace))
				}
				last := -1 // the resumed handshake's line
				for i, ev := range node.Server {
					if ev.Ev == "keylog" {
						last = i
					}
				}
				if last >= 0 {
					node.Server = slices.Delete(slices.Clone(node.Server), last, last+1)
				}
			}},
	}
}

// sslOpNoTicket is OpenSSL's SSL_OP_NO_TICKET: a client that refuses
// session tickets.
const sslOpNoTicket = 1 << 14

func hasEvent(tr *trace, want serverEvent) bool { return slices.Contains(tr.Server, want) }

// alpnRefusedBeforeOCSP is the one difference of a client refused for
// ALPN: in TLS 1.2 Node emits 'OCSPRequest' before it refuses (OpenSSL
// selects the certificate first), tlsemit refuses first and emits none, so
// no staple is fetched for a client that will not be served.
func alpnRefusedBeforeOCSP(t *testing.T, node, goTrace *trace) {
	if countEvents(node, "OCSPRequest") != 1 || countEvents(goTrace, "OCSPRequest") != 0 {
		t.Errorf("'OCSPRequest': want one from Node (TLS 1.2), none from tlsemit: node %+v, tlsemit %+v", node.Server, goTrace.Server)
	}
	node.Server = without(node.Server, func(ev serverEvent) bool { return ev.Ev == "OCSPRequest" })
}

// authErrors returns the authorizationError of each 'secureConnection' of
// a trace, "" for an authorized client.
func authErrors(tr *trace) []string {
	var codes []string
	for _, ev := range tr.Server {
		if ev.Ev == "secureConnection" {
			if ev.Authorized != (ev.AuthError == "") {
				codes = append(codes, fmt.Sprintf("authorized %v with %q", ev.Authorized, ev.AuthError))
				continue
			}
			codes = append(codes, ev.AuthError)
		}
	}
	return codes
}

// wantAuthErrors checks that Node served every client and gave these
// authorizationErrors ("": authorized), so that a scenario tests something.
func wantAuthErrors(codes ...string) func(t *testing.T, node trace) {
	return func(t *testing.T, node trace) {
		if got := authErrors(&node); !slices.Equal(got, codes) {
			t.Errorf("Node's authorizationErrors %q, want %q", got, codes)
		}
	}
}

// refusedKeepingReason is the deliberate difference of a client refused
// with rejectUnauthorized: Node lets the handshake complete, destroys the
// socket, and its 'tlsClientError' says only ECONNRESET; tlsemit refuses
// in the handshake (with an alert) and 'tlsClientError' carries the
// reason, codes, in order. Clients Node served are served by both.
func refusedKeepingReason(codes ...string) func(t *testing.T, node, goTrace *trace) {
	return func(t *testing.T, node, goTrace *trace) {
		if got := errorCodes(node); !slices.Equal(got, slices.Repeat([]string{"ECONNRESET"}, len(codes))) {
			t.Errorf("Node's 'tlsClientError' codes %q, want ECONNRESET %d times", got, len(codes))
		}
		if got := errorCodes(goTrace); !slices.Equal(got, codes) {
			t.Errorf("tlsemit's 'tlsClientError' codes %q, want %q", got, codes)
		}
		if n, g := countEvents(node, "secureConnection"), countEvents(goTrace, "secureConnection"); n != g {
			t.Errorf("served: Node %d, tlsemit %d", n, g)
		}
		for i, c := range goTrace.Client {
			if !c.OK && (c.Err == nil || !strings.Contains(*c.Err, "_ALERT_")) {
				t.Errorf("tlsemit's client %d: want an alert, got %+v", i, c)
			}
		}
		*node = *goTrace
	}
}

// errorCodes returns the codes of a trace's 'tlsClientError' events.
func errorCodes(tr *trace) []string {
	var codes []string
	for _, ev := range tr.Server {
		if ev.Ev == "tlsClientError" {
			codes = append(codes, ev.Code)
		}
	}
	return codes
}

func countEvents(tr *trace, ev string) int {
	n := 0
	for _, e := range tr.Server {
		if e.Ev == ev {
			n++
		}
	}
	return n
}

func without(evs []serverEvent, drop func(serverEvent) bool) []serverEvent {
	return slices.DeleteFunc(slices.Clone(evs), drop)
}

// keylogLabels returns the labels of a trace's key-log lines, sorted.
func keylogLabels(tr *trace) []string {
	var labels []string
	for _, ev := range tr.Server {
		if ev.Ev == "keylog" {
			labels = append(labels, ev.Label)
		}
	}
	slices.Sort(labels)
	return labels
}

// rawFailingClients connects one client after another, each failing the
// handshake its own way, and waits for the server to report each.
func rawFailingClients(t *testing.T, port int, reported <-chan struct{}) {
	half := "\x16\x03\x01\x00\xc8\x01\x00" // half a ClientHello record
	for _, c := range []struct {
		send  string
		reset bool
	}{
		{"", false},   // connects and leaves: ECONNRESET
		{half, false}, // half a record, then FIN: ECONNRESET
		{half, true},  // half a record, then RST: ECONNRESET
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false}, // ERR_SSL_HTTP_REQUEST
		{"POST /x HTTP/1.1\r\n\r\n", false},          // ERR_SSL_HTTP_REQUEST
		{"CONNECT a:443 HTTP/1.1\r\n\r\n", false},    // ERR_SSL_HTTPS_PROXY_REQUEST
		{"hello, not TLS\r\n", false},                // ERR_SSL_WRONG_VERSION_NUMBER
	} {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(c.send))
		if c.reset {
			conn.(*net.TCPConn).SetLinger(0)
		}
		conn.Close()
		select { // one failure at a time, in order
		case <-reported:
		case <-time.After(10 * time.Second):
			t.Fatalf("the server reported no client error for %q", c.send)
		}
	}
}

func TestDifferentialAgainstNode(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	p := newDifferentialPKI(t)
	for _, sc := range differentialScenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.FailingClientCerts {
				sc.Client.Each, sc.Client.Connections = p.failingClients, len(p.failingClients)
			}
			opts, contexts := p.configure(t, &sc)
			nodeTrace := runNodeServer(t, node, p, sc)
			goTrace := runGoServer(t, node, p, sc, opts, contexts)
			if sc.Want != nil {
				sc.Want(t, nodeTrace)
			}
			if sc.Deviation != nil {
				sc.Deviation(t, &nodeTrace, &goTrace)
			}
			if diff := cmp.Diff(nodeTrace, goTrace); diff != "" {
				t.Errorf("trace differs from Node's (-node +tlsserver):\n%s", diff)
			}
			if len(nodeTrace.Client) == 0 && sc.Raw == nil {
				t.Fatal("the client made no connection")
			}
			if sc.Raw != nil {
				var codes []string
				for _, ev := range nodeTrace.Server {
					if ev.Ev == "tlsClientError" {
						codes = append(codes, ev.Code)
					}
				}
				t.Logf("Node's codes: %v", codes)
				if len(codes) == 0 {
					t.Fatal("Node reported no client error: the scenario tests nothing")
				}
			}
		})
	}
}
