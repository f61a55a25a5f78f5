package tlsserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/nodeharness"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Issue 18: the cases of Node's own test of client verification,
// test/parallel/test-tls-server-verify.js (less renegotiation, which
// crypto/tls servers do not do), and the same with rejectUnauthorized
// false and a CRL, each client the real `openssl s_client`, against Node's
// tls.createServer and against tlsserver; the CRLs are made by `openssl ca
// -gencrl` (v2, and v1 in the last case). Every client is served or refused
// by both as Node's test expects; a served client gets the same
// authorized and authorizationError from both; a client Node refuses with
// a bare ECONNRESET is refused by tlsserver with the reason, which is the
// authorizationError Node gives it with rejectUnauthorized false.
func TestServerVerifyCasesWithOpenSSLClient(t *testing.T) {
	openssl := testenv.RequireTool(t, "openssl")
	nodeharness.Require(t)
	dir := t.TempDir()
	server := newTSPKI(t)
	serverChain := server.leaf.WriteChainPEM(dir)
	_, serverKey := server.leaf.WritePEM(dir)
	rootPath, _ := server.ca.WritePEM(dir)
	ca1, ca2 := testpki.NewCA(t, "Verify CA1"), testpki.NewCA(t, "Verify CA2")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	agents := map[string]*testpki.Leaf{
		"agent1": ca1.Issue(t, testpki.LeafOptions{CommonName: "agent1", ExtKeyUsage: eku}),
		"agent3": ca2.Issue(t, testpki.LeafOptions{CommonName: "agent3", ExtKeyUsage: eku}),
		"agent4": ca2.Issue(t, testpki.LeafOptions{CommonName: "agent4", ExtKeyUsage: eku}),
	}
	self := testpki.NewCA(t, "agent2") // Node's agent2 is self-signed
	files := map[string][2]string{}
	for name, l := range agents {
		c, k := l.WritePEM(dir)
		files[name] = [2]string{c, k}
	}
	selfCert, selfKey := self.WritePEM(dir)
	files["agent2"] = [2]string{selfCert, selfKey}
	crlFile := func(v1 bool) (string, []byte) {
		o := crltest.NewOpenSSLCA(t, ca2, v1)
		o.Revoke(agents["agent4"])
		der := o.GenCRL(time.Time{}, time.Time{})
		path := filepath.Join(dir, fmt.Sprintf("ca2-v1-%v.crl", v1))
		if err := os.WriteFile(path, testpki.CRLPEM(der), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, der
	}
	crlV2, derV2 := crlFile(false)
	crlV1, derV1 := crlFile(true)
	caFiles := map[*testpki.CA]string{}
	for _, ca := range []*testpki.CA{ca1, ca2} {
		caFiles[ca], _ = ca.WritePEM(dir)
	}

	type client struct {
		name         string
		reject, auth bool
	}
	for _, tc := range []struct {
		title                   string
		requestCert, rejectUnau bool
		cas                     []*testpki.CA
		crlPath                 string
		crlDER                  []byte
		clients                 []client
	}{
		{"Do not request certs. Everyone is unauthorized.", false, false, []*testpki.CA{ca1}, "", nil,
			[]client{{"agent1", false, false}, {"agent2", false, false}, {"agent3", false, false}, {"nocert", false, false}}},
		{"Allow both authed and unauthed connections with CA1", true, false, []*testpki.CA{ca1}, "", nil,
			[]client{{"agent1", false, true}, {"agent2", false, false}, {"agent3", false, false}, {"nocert", false, false}}},
		{"Allow only authed connections with CA1", true, true, []*testpki.CA{ca1}, "", nil,
			[]client{{"agent1", false, true}, {"agent2", true, false}, {"agent3", true, false}, {"nocert", true, false}}},
		{"Allow only authed connections with CA1 and CA2", true, true, []*testpki.CA{ca1, ca2}, "", nil,
			[]client{{"agent1", false, true}, {"agent2", true, false}, {"agent3", false, true}, {"nocert", true, false}}},
		{"Allow only certs signed by CA2 but not in the CRL", true, true, []*testpki.CA{ca2}, crlV2, derV2,
			[]client{{"agent1", true, false}, {"agent2", true, false}, {"agent3", false, true}, {"agent4", true, false}, {"nocert", true, false}}},
		{"Allow all, authorize certs signed by CA2 but not in the v1 CRL", true, false, []*testpki.CA{ca2}, crlV1, derV1,
			[]client{{"agent1", false, false}, {"agent2", false, false}, {"agent3", false, true}, {"agent4", false, false}, {"nocert", false, false}}},
	} {
		t.Run(tc.title, func(t *testing.T) {
			var caPaths, crlPaths []string
			var cas []*x509.Certificate
			for _, ca := range tc.cas {
				caPaths = append(caPaths, caFiles[ca])
				cas = append(cas, ca.Cert)
			}
			var crls [][]byte
			if tc.crlPath != "" {
				crlPaths, crls = []string{tc.crlPath}, [][]byte{tc.crlDER}
			}
			nodeOpts := nodeharness.CRLServerOptions{Cert: serverChain, Key: serverKey, CA: caPaths, CRL: crlPaths,
				NoRequestCert: !tc.requestCert, RejectUnauthorized: tc.rejectUnau}
			node := nodeharness.StartCRLServer(t, nodeOpts)
			var twin *nodeharness.CRLServer // Node with rejectUnauthorized false: the reason it loses
			if tc.rejectUnau {
				nodeOpts.RejectUnauthorized = false
				twin = nodeharness.StartCRLServer(t, nodeOpts)
			}
			auth := tls.NoClientCert
			if tc.requestCert {
				auth = tls.RequestClientCert
				if tc.rejectUnau {
					auth = tls.RequireAndVerifyClientCert
				}
			}
			srv := tsServer(t, server, func(o *tlsserver.Options) {
				o.CA, o.CRL = cas, crls
				o.Config = &tls.Config{ClientAuth: auth}
			})
			goVerdicts := make(chan nodeharness.Verdict, 1)
			srv.OnSecureConnection(func(c *tls.Conn) {
				ok, err := tlsserver.Authorized(c)
				goVerdicts <- nodeharness.Verdict{Authorized: ok, Code: tlsserver.Code(err)}
				c.Write([]byte("hello\n"))
				c.Close()
			})
			srv.OnTLSClientError(func(err error, _ net.Conn) { goVerdicts <- nodeharness.Verdict{ClientError: tlsserver.Code(err)} })

			sClient := func(port int, name string) bool {
				args := []string{"s_client", "-connect", "127.0.0.1:" + strconv.Itoa(port), "-servername", "localhost",
					"-CAfile", rootPath, "-quiet"}
				if f, ok := files[name]; ok {
					args = append(args, "-cert", f[0], "-key", f[1])
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, openssl, args...)
				out, _ := cmd.CombinedOutput()
				return strings.Contains(string(out), "hello")
			}
			for _, c := range tc.clients {
				nodeServed := sClient(node.Port, c.name)
				n := node.Next(t)
				goServed := sClient(port(srv), c.name)
				var g nodeharness.Verdict
				select {
				case g = <-goVerdicts:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: tlsserver reported nothing", c.name)
				}
				t.Logf("%s: Node %+v (served %v), tlsserver %+v (served %v)", c.name, n, nodeServed, g, goServed)
				if nodeServed != !c.reject || goServed != !c.reject {
					t.Errorf("%s: served by Node %v, by tlsserver %v; Node's test wants %v", c.name, nodeServed, goServed, !c.reject)
					continue
				}
				if !c.reject {
					if n.Authorized != c.auth || g != n {
						t.Errorf("%s: Node %+v, tlsserver %+v; Node's test wants authorized %v", c.name, n, g, c.auth)
					}
					continue
				}
				want := n.ClientError
				if want == "ECONNRESET" { // the reason Node loses, from its twin
					sClient(twin.Port, c.name)
					want = twin.Next(t).Code
				}
				if g.ClientError != want || want == "" || want == "ECONNRESET" {
					t.Errorf("%s: tlsserver refused it with %q, want %q (Node: %+v)", c.name, g.ClientError, want, n)
				}
			}
		})
	}
}

// Issue 18: a CRL that no CA verifies is refused when set (New's error),
// where Node holds it and fails every client of its CA at each handshake
// (CRL_SIGNATURE_FAILURE for a forged one, UNABLE_TO_GET_CRL for another
// CA's): a deliberate difference, checked against Node.
func TestCRLRefusedWhenSetNodeDifference(t *testing.T) {
	nodeharness.Require(t)
	p := newCRLPKI(t)
	dir := t.TempDir()
	serverChain := p.leaf.WriteChainPEM(dir)
	_, serverKey := p.leaf.WritePEM(dir)
	rootPath, _ := p.tsPKI.ca.WritePEM(dir)
	caPath, _ := p.ca.WritePEM(dir)
	good := p.ca.Issue(t, testpki.LeafOptions{CommonName: "good", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	goodCert, goodKey := good.WritePEM(dir)
	for _, tc := range []struct {
		name     string
		crl      []byte
		nodeCode string
		is       error
	}{
		{"forged", p.ca.CRL(t, testpki.CRLOptions{SignWith: p.ca2.Key}), "CRL_SIGNATURE_FAILURE", crlfetch.ErrSignature},
		{"another CA's", p.ca2Empty, "UNABLE_TO_GET_CRL", crlfetch.ErrNoIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".crl")
			if err := os.WriteFile(path, testpki.CRLPEM(tc.crl), 0o600); err != nil {
				t.Fatal(err)
			}
			node := nodeharness.StartCRLServer(t, nodeharness.CRLServerOptions{Cert: serverChain, Key: serverKey,
				CA: []string{caPath}, CRL: []string{path}})
			r := nodeharness.Client(t, nodeharness.ClientOptions{Port: node.Port, ServerName: "localhost", CA: rootPath,
				Cert: goodCert, Key: goodKey, Version: "TLSv1.3"})
			if v := node.Next(t); v.Code != tc.nodeCode || r.Data != "hello\n" {
				t.Errorf("Node: %+v, client %+v; want the client served with %s", v, r, tc.nodeCode)
			}
			_, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
				CA: []*x509.Certificate{p.ca.Cert}, CRL: [][]byte{tc.crl}, Config: &tls.Config{ClientAuth: tls.RequestClientCert}})
			if !errors.Is(err, tc.is) {
				t.Errorf("New: %v, want an error wrapping %v", err, tc.is)
			}
		})
	}
}
