package tlsserver_test

// Clients nobody here wrote, against tlsserver: openssl s_client -status,
// Node's tls.connect({requestOCSP: true}) and curl over HTTP/1.1 and HTTP/2.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// stapleServer starts a server whose 'OCSPRequest' listener staples a real
// OCSP response for its certificate, and returns it with that response.
func stapleServer(t *testing.T, cfg *tls.Config) (*tlsserver.Server, *testpki.CA, []byte, *int) {
	t.Helper()
	ca := testpki.NewCA(t, "Interop Root")
	leaf := ca.Issue(t, testpki.LeafOptions{})
	resp := ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{Status: ocsp.Good})
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{leaf.TLSCertificate(true)},
		Config:       cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	requests := new(int)
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		*requests++
		if !bytes.Equal(cert, leaf.DER) || !bytes.Equal(issuer, ca.DER) {
			cb(fmt.Errorf("listener got the wrong certificate or issuer"), nil)
			return
		}
		cb(nil, resp)
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return srv, ca, resp, requests
}

func port(srv *tlsserver.Server) int { return srv.Addr().(*net.TCPAddr).Port }

func TestOpenSSLClientSeesStaple(t *testing.T) {
	openssl := testenv.RequireTool(t, "openssl")
	srv, ca, _, requests := stapleServer(t, nil)
	caPath, _ := ca.WritePEM(t.TempDir())
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		t.Run(version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port(srv)),
				"-servername", "localhost", "-status", version, "-CAfile", caPath, "-verify_return_error")
			cmd.Stdin = strings.NewReader("Q\n")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl s_client: %v\n%s", err, out)
			}
			for _, want := range []string{"OCSP Response Status: successful", "Cert Status: good", "Verify return code: 0 (ok)"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("s_client output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	if *requests != 2 {
		t.Errorf("'OCSPRequest' ran %d times for two status requests, want 2", *requests)
	}
	// Without -status there is no status_request, so no event.
	before := *requests
	cmd := exec.Command(openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port(srv)), "-servername", "localhost")
	cmd.Stdin = strings.NewReader("Q\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if *requests != before {
		t.Errorf("'OCSPRequest' ran for a ClientHello without status_request")
	}
}

func TestNodeClientReceivesStapleBytes(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	srv, ca, resp, _ := stapleServer(t, nil)
	// As Node's server: read until the client ends, then end.
	srv.OnSecureConnection(func(c *tls.Conn) {
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	})
	caPath, _ := ca.WritePEM(t.TempDir())
	script := `
const tls = require('tls'), fs = require('fs');
const s = tls.connect({host: '127.0.0.1', port: +process.argv[1], servername: 'localhost',
  ca: fs.readFileSync(process.argv[2]), requestOCSP: true});
s.on('OCSPResponse', (r) => console.log('ocsp ' + (r ? r.toString('hex') : 'null')));
s.on('secureConnect', () => { console.log('authorized ' + s.authorized); s.end(); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
`
	out, err := exec.Command(node, "-e", script, fmt.Sprint(port(srv)), caPath).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "ocsp " + hex.EncodeToString(resp) + "\nauthorized true\n"
	if string(out) != want {
		t.Errorf("node client printed\n%s\nwant\n%s", out, want)
	}
}

func TestCurlOverHTTP1AndHTTP2(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	srv, ca, _, _ := stapleServer(t, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s tls=%v", r.Proto, r.TLS != nil)
	})}
	go hs.Serve(srv.Listener())
	t.Cleanup(func() { hs.Close() })
	caPath, _ := ca.WritePEM(t.TempDir())
	url := fmt.Sprintf("https://localhost:%d/", port(srv))
	resolve := fmt.Sprintf("localhost:%d:127.0.0.1", port(srv))
	for _, tc := range []struct{ flag, want string }{
		{"--http1.1", "proto=HTTP/1.1 tls=true"},
		{"--http2", "proto=HTTP/2.0 tls=true"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			out, err := exec.Command(curl, "-sS", "--max-time", "10", tc.flag, "--cacert", caPath,
				"--resolve", resolve, "--cert-status", url).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			if string(out) != tc.want {
				t.Errorf("curl got %q, want %q", out, tc.want)
			}
		})
	}
}
