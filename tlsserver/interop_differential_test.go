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
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	HandshakeTimeoutMs int    `json:"handshakeTimeoutMs,omitempty"`

	// Filled in by the harness for node-server.js.
	Key      string       `json:"key"`
	Cert     string       `json:"cert"`
	CA       []string     `json:"ca,omitempty"`
	Contexts []nodeSNICtx `json:"contexts,omitempty"`

	Client clientOpts `json:"-"`
	// Deviation, when set, checks the two traces where tlsemit differs from
	// Node on purpose, and then aligns them for the comparison.
	Deviation func(t *testing.T, node, goTrace *trace) `json:"-"`
}

// sniContext is an addContext certificate with its own CA, if any.
type sniContext struct {
	cert tls.Certificate
	ca   []*x509.Certificate
}

type nodeSNICtx struct {
	Host string   `json:"host"`
	Key  string   `json:"key"`
	Cert string   `json:"cert"`
	CA   []string `json:"ca,omitempty"`
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
}

// clientResult is what node-client.js saw on one connection.
type clientResult struct {
	OK       bool    `json:"ok"`
	OCSP     *string `json:"ocsp"`
	Reused   bool    `json:"reused"`
	Err      *string `json:"err"`
	Protocol string  `json:"protocol,omitempty"`
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
	return p
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
			lines <- ev.serverEvent
		}
	}()
	var port int
	select {
	case port = <-ports:
	case <-time.After(10 * time.Second):
		t.Fatalf("node-server.js did not start: %s", stderr.String())
	}
	co := sc.Client
	co.Port = port
	var tr trace
	tr.Client = runNodeClient(t, node, co)
	fmt.Fprintln(stdin, "settle")
	for ev := range lines {
		if ev.Ev == "settled" {
			break
		}
		tr.Server = append(tr.Server, p.named(ev))
	}
	return tr
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
		if err := srv.AddContextWithCA(host, &c.cert, c.ca); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu           sync.Mutex
		recorded     []serverEvent
		pendingAfter tlsserver.OCSPCallback
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
	})
	srv.OnSecureConnection(func(c *tls.Conn) {
		st := c.ConnectionState()
		record(serverEvent{Ev: "secureConnection", Protocol: nodeProtocol(st.Version)})
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
	srv.OnTLSClientError(func(err error, c net.Conn) {
		record(serverEvent{Ev: "tlsClientError", Code: errorCode(err)})
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	co := sc.Client
	co.Port = srv.Addr().(*net.TCPAddr).Port
	var tr trace
	tr.Client = runNodeClient(t, node, co)
	deadline := time.Now().Add(3 * time.Second)
	for srv.Connections() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Let events of connections that just ended be recorded.
	time.Sleep(50 * time.Millisecond)
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
	switch {
	case errors.Is(err, tlsserver.ErrMultipleCallback):
		return "ERR_MULTIPLE_CALLBACK"
	case errors.Is(err, tlsserver.ErrHandshakeTimeout):
		return "ERR_TLS_HANDSHAKE_TIMEOUT"
	case errors.Is(err, errBoom):
		return "user:boom"
	}
	return "other:" + err.Error()
}

func str(s string) *string { return &s }

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
	}
}

func TestDifferentialAgainstNode(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	p := newDifferentialPKI(t)
	for _, sc := range differentialScenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			opts, contexts := p.configure(t, &sc)
			nodeTrace := runNodeServer(t, node, p, sc)
			goTrace := runGoServer(t, node, p, sc, opts, contexts)
			if sc.Deviation != nil {
				sc.Deviation(t, &nodeTrace, &goTrace)
			}
			if diff := cmp.Diff(nodeTrace, goTrace); diff != "" {
				t.Errorf("trace differs from Node's (-node +tlsserver):\n%s", diff)
			}
			if len(nodeTrace.Client) == 0 {
				t.Fatal("the client made no connection")
			}
		})
	}
}
