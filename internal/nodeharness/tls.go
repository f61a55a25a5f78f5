package nodeharness

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Node's TLS peers for the revocation tests: a client with a client
// certificate (tls.connect), and the reference server with `crl`
// (tls.createServer({ca, crl, requestCert: true, rejectUnauthorized:
// false}) by default), which reports each client's authorizationError.

const clientJS = `'use strict';
const tls = require('tls'), fs = require('fs');
const o = JSON.parse(process.argv[2]);
const out = {secureConnect: false, data: '', error: ''};
const s = tls.connect({host: '127.0.0.1', port: o.port, servername: o.servername,
  ca: fs.readFileSync(o.ca), cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key),
  minVersion: o.version, maxVersion: o.version}, () => { out.secureConnect = true; });
s.setEncoding('utf8');
s.on('data', (d) => { out.data += d; });
s.on('error', (e) => { out.error = e.code || e.message; });
s.on('close', () => { process.stdout.write(JSON.stringify(out) + '\n'); });
setTimeout(() => s.destroy(), 10000).unref();
`

// ClientOptions are a Node TLS client's: files in PEM.
type ClientOptions struct {
	Port          int
	ServerName    string
	CA, Cert, Key string // the server's root, the client's chain and key
	Version       string // "TLSv1.2" or "TLSv1.3"
}

// ClientResult is what the Node client saw: whether 'secureConnect' came,
// the data it read until the connection closed, and the error's code
// (ECONNRESET, ERR_SSL_…), if any.
type ClientResult struct {
	SecureConnect bool   `json:"secureConnect"`
	Data          string `json:"data"`
	Error         string `json:"error"`
}

// Client connects with Node's tls.connect and a client certificate, reads
// until the server closes, and reports.
func Client(t testing.TB, o ClientOptions) ClientResult {
	t.Helper()
	script := writeScript(t, "client.js", clientJS)
	args, _ := json.Marshal(map[string]any{"port": o.Port, "servername": o.ServerName, "ca": o.CA, "cert": o.Cert,
		"key": o.Key, "version": o.Version})
	var r ClientResult
	if err := json.Unmarshal(Run(t, script, string(args)), &r); err != nil {
		t.Fatalf("nodeharness: client output: %v", err)
	}
	return r
}

const crlServerJS = `'use strict';
const tls = require('tls'), fs = require('fs');
const o = JSON.parse(process.argv[2]);
const srv = tls.createServer({key: fs.readFileSync(o.key), cert: fs.readFileSync(o.cert),
  ca: (o.ca || []).map((f) => fs.readFileSync(f)), crl: (o.crl || []).map((f) => fs.readFileSync(f)),
  requestCert: !o.noRequestCert, rejectUnauthorized: !!o.rejectUnauthorized});
srv.on('secureConnection', (s) => {
  process.stdout.write(JSON.stringify({authorized: s.authorized, code: s.authorizationError || ''}) + '\n');
  s.end('hello\n');
});
srv.on('tlsClientError', (e) => process.stdout.write(JSON.stringify({clientError: e.code || e.message}) + '\n'));
srv.listen(0, '127.0.0.1', () => process.stdout.write('port ' + srv.address().port + '\n'));
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
`

// CRLServerOptions configure CRLServer: PEM files.
type CRLServerOptions struct {
	Cert, Key string   // the server's chain and key
	CA        []string // Node's ca
	CRL       []string // Node's crl
	// NoRequestCert is requestCert: false; RejectUnauthorized is Node's
	// (a refused client is reported as its 'tlsClientError').
	NoRequestCert, RejectUnauthorized bool
}

// CRLServer is Node's tls.Server with `crl`, for differential tests: it
// reports each connection's authorizationError ("" when authorized).
type CRLServer struct {
	Port  int
	lines *bufio.Scanner
	stop  func()
}

// Verdict is what the server said of one connection.
type Verdict struct {
	Authorized  bool   `json:"authorized"`
	Code        string `json:"code"`
	ClientError string `json:"clientError"`
}

// StartCRLServer starts Node's server; it stops when the test ends.
func StartCRLServer(t testing.TB, o CRLServerOptions) *CRLServer {
	t.Helper()
	node := Require(t)
	script := writeScript(t, "crlserver.js", crlServerJS)
	args, _ := json.Marshal(map[string]any{"cert": o.Cert, "key": o.Key, "ca": o.CA, "crl": o.CRL,
		"noRequestCert": o.NoRequestCert, "rejectUnauthorized": o.RejectUnauthorized})
	cmd := exec.Command(node, script, string(args))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &CRLServer{lines: bufio.NewScanner(stdout)}
	s.stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(s.stop)
	if !s.lines.Scan() {
		t.Fatalf("nodeharness: the CRL server did not start (node threw on its options?)")
	}
	if s.Port, err = strconv.Atoi(strings.TrimPrefix(s.lines.Text(), "port ")); err != nil {
		t.Fatalf("nodeharness: the CRL server printed %q", s.lines.Text())
	}
	return s
}

// Next returns the verdict on the next connection.
func (s *CRLServer) Next(t testing.TB) Verdict {
	t.Helper()
	if !s.lines.Scan() {
		t.Fatal("nodeharness: the CRL server ended")
	}
	var v Verdict
	if err := json.Unmarshal(s.lines.Bytes(), &v); err != nil {
		t.Fatalf("nodeharness: %q: %v", s.lines.Text(), err)
	}
	return v
}

func writeScript(t testing.TB, name, js string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
