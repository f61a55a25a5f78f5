package crlfetch

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/nodeharness"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// goServer is a plain crypto/tls server on 127.0.0.1 whose
// VerifyConnection is a Fetcher's: each handshake's error goes to errs,
// and an established connection gets "hello\n".
type goServer struct {
	ln   net.Listener
	errs chan error
	done chan struct{}
}

func startGoServer(t *testing.T, cfg *tls.Config) *goServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &goServer{ln: ln, errs: make(chan error, 16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, cfg)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			err = tc.Handshake()
			s.errs <- err
			if err == nil {
				tc.Write([]byte("hello\n"))
			}
			tc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-s.done })
	return s
}

func (s *goServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *goServer) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake reached the server")
		return nil
	}
}

// TestRealPeers: CRLs made by the real `openssl ca -gencrl` (v1, without
// a CRL number, and v2) after `openssl ca -revoke`, served over HTTP; the
// clients are `openssl s_client -cert` and Node's tls.connect with client
// certificates, TLS 1.2 and 1.3; the server is plain crypto/tls with the
// Fetcher's VerifyConnection. The revoked client is refused with
// CERT_REVOKED and reads nothing; the good one reads the server's hello.
func TestRealPeers(t *testing.T) {
	openssl := testenv.RequireTool(t, "openssl")
	for _, v1 := range []bool{true, false} {
		t.Run(map[bool]string{true: "v1 CRL", false: "v2 CRL"}[v1], func(t *testing.T) {
			m := newMTLS(t)
			ossl := crltest.NewOpenSSLCA(t, m.inter, v1)
			ossl.Revoke(m.bad)
			der := ossl.GenCRL(time.Time{}, time.Time{})
			c, err := crl.Parse(der)
			if err != nil || (c.Number == nil) != v1 {
				t.Fatalf("openssl's CRL: %v (number %v)", err, c.Number)
			}
			m.host.Set("/inter.crl", der)
			m.publishRoot(t)
			f, _ := newFetcher(t, Options{})
			srv := startGoServer(t, m.serverConfig(f))
			dir := t.TempDir()
			rootPath, _ := m.root.WritePEM(dir)
			for _, leaf := range []*testpki.Leaf{m.good, m.bad} {
				chain := leaf.WriteChainPEM(dir)
				_, key := leaf.WritePEM(dir)
				revoked := leaf == m.bad
				for _, version := range []string{"1.2", "1.3"} {
					// openssl s_client
					cmd := exec.Command(openssl, "s_client", "-connect", "127.0.0.1:"+strconv.Itoa(srv.port()),
						"-servername", "localhost", "-CAfile", rootPath, "-cert", chain, "-cert_chain", chain, "-key", key,
						"-tls"+strings.ReplaceAll(version, ".", "_"), "-quiet")
					cmd.Stdin = bytes.NewReader(nil)
					out, _ := cmd.CombinedOutput()
					err := srv.next(t)
					checkVerdict(t, "s_client TLS "+version, revoked, err, strings.Contains(string(out), "hello"), string(out))

					// Node's tls.connect
					if _, err := exec.LookPath("node"); err != nil && !testenv.CI() {
						continue
					}
					r := nodeharness.Client(t, nodeharness.ClientOptions{Port: srv.port(), ServerName: "localhost",
						CA: rootPath, Cert: chain, Key: key, Version: "TLSv" + version})
					err = srv.next(t)
					checkVerdict(t, "node TLS "+version, revoked, err, r.Data == "hello\n", r.Error)
				}
			}
		})
	}
}

func checkVerdict(t *testing.T, who string, revoked bool, serverErr error, gotHello bool, clientSaw string) {
	t.Helper()
	if !revoked {
		if serverErr != nil || !gotHello {
			t.Errorf("%s, good client: server %v, client %q", who, serverErr, clientSaw)
		}
		return
	}
	if !errors.Is(serverErr, ErrRevoked) || crl.Code(serverErr) != "CERT_REVOKED" || gotHello {
		t.Errorf("%s, revoked client: server %v, hello read %v, client %q", who, serverErr, gotHello, clientSaw)
	}
}
