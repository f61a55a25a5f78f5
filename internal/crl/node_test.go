package crl

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/nodeharness"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestNodeDifferential runs Node's own tls.createServer({ca, crl,
// requestCert: true, rejectUnauthorized: false}) on each combination of
// CRLs and checks that Policy{}.Check gives the authorizationError Node
// gives a client presenting leaf and intermediate.
func TestNodeDifferential(t *testing.T) {
	nodeharness.Require(t)
	p := newPKI(t)
	dir := t.TempDir()
	serverCert := p.root.Issue(t, testpki.LeafOptions{})
	certPath, keyPath := serverCert.WritePEM(dir)
	rootPath, _ := p.root.WritePEM(dir)
	now := time.Now()
	ago := now.Add(-time.Minute).Truncate(time.Second)
	type crlFile struct {
		path string
		crl  *CRL
	}
	mk := func(name string, ca *testpki.CA, o testpki.CRLOptions) crlFile {
		der := ca.CRL(t, o)
		path := filepath.Join(dir, name+".crl.pem")
		if err := os.WriteFile(path, testpki.CRLPEM(der), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(der, ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return crlFile{path, c}
	}
	leafSerial, interSerial := p.leaf.Cert.SerialNumber, p.inter.Cert.SerialNumber
	interEmpty := mk("inter-empty", p.inter, testpki.CRLOptions{ThisUpdate: ago})
	interRevLeaf := mk("inter-revleaf", p.inter, testpki.CRLOptions{ThisUpdate: ago, Revoked: []*big.Int{leafSerial}})
	interNewer := mk("inter-newer", p.inter, testpki.CRLOptions{ThisUpdate: ago.Add(30 * time.Second)})
	interExpired := mk("inter-expired", p.inter, testpki.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	interFuture := mk("inter-future", p.inter, testpki.CRLOptions{ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)})
	rootEmpty := mk("root-empty", p.root, testpki.CRLOptions{ThisUpdate: ago})
	rootRevInter := mk("root-revinter", p.root, testpki.CRLOptions{ThisUpdate: ago, Revoked: []*big.Int{interSerial}})
	rootExpired := mk("root-expired", p.root, testpki.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)})
	for _, set := range [][]crlFile{
		{interEmpty, rootEmpty}, {interRevLeaf, rootEmpty}, {interEmpty, rootRevInter}, {interEmpty},
		{rootEmpty}, {interRevLeaf}, {interRevLeaf, rootExpired}, {interExpired, rootEmpty},
		{interFuture, rootEmpty}, {interEmpty, interRevLeaf, rootEmpty}, {interRevLeaf, interEmpty, rootEmpty},
		{interRevLeaf, interNewer, rootEmpty}, {interExpired, interEmpty, rootEmpty}, {interExpired, rootRevInter},
	} {
		var paths, names []string
		var crls []*CRL
		for _, c := range set {
			paths = append(paths, c.path)
			names = append(names, filepath.Base(c.path))
			crls = append(crls, c.crl)
		}
		srv := nodeharness.StartCRLServer(t, nodeharness.CRLServerOptions{Cert: certPath, Key: keyPath, CA: []string{rootPath}, CRL: paths})
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port), &tls.Config{RootCAs: p.root.Pool(), ServerName: "localhost",
			Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}})
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(conn)
		conn.Close()
		node := srv.Next(t)
		got := Code(Policy{}.Check(p.chain, time.Now(), NewSet(crls...).Find))
		if got != node.Code {
			t.Errorf("%v: Check says %q, Node %q", names, got, node.Code)
		}
	}

	// An intermediate among the trusted certificates: crypto/x509 ends
	// the chain there, Node goes on to the root (or, without the root,
	// refuses). The Go side is crypto/x509's chains from the same CA
	// certificates, checked with their Anchors.
	interPath, _ := p.inter.WritePEM(dir)
	for _, tc := range []struct {
		ca        []*testpki.CA
		withInter bool // the client sends its intermediate
		set       []crlFile
	}{
		{[]*testpki.CA{p.root, p.inter}, false, []crlFile{interEmpty, rootRevInter}},
		{[]*testpki.CA{p.root, p.inter}, true, []crlFile{interEmpty, rootRevInter}},
		{[]*testpki.CA{p.root, p.inter}, false, []crlFile{interEmpty, rootEmpty}},
		{[]*testpki.CA{p.root, p.inter}, false, []crlFile{interEmpty}},
		{[]*testpki.CA{p.root, p.inter}, false, []crlFile{interRevLeaf, rootRevInter}},
		{[]*testpki.CA{p.inter}, false, []crlFile{interEmpty}},
		{[]*testpki.CA{p.inter}, false, []crlFile{interEmpty, rootEmpty}},
		{[]*testpki.CA{p.inter}, true, []crlFile{interRevLeaf}},
	} {
		var caPaths, paths, names []string
		var cas []*x509.Certificate
		roots := x509.NewCertPool()
		for _, ca := range tc.ca {
			caPaths = append(caPaths, map[*testpki.CA]string{p.root: rootPath, p.inter: interPath}[ca])
			names = append(names, ca.Name)
			cas = append(cas, ca.Cert)
			roots.AddCert(ca.Cert)
		}
		var crls []*CRL
		for _, c := range tc.set {
			paths = append(paths, c.path)
			names = append(names, filepath.Base(c.path))
			crls = append(crls, c.crl)
		}
		srv := nodeharness.StartCRLServer(t, nodeharness.CRLServerOptions{Cert: certPath, Key: keyPath, CA: caPaths, CRL: paths})
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port), &tls.Config{RootCAs: p.root.Pool(), ServerName: "localhost",
			Certificates: []tls.Certificate{p.leaf.TLSCertificate(tc.withInter)}})
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(conn)
		conn.Close()
		node := srv.Next(t)
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if tc.withInter {
			opts.Intermediates.AddCert(p.inter.Cert)
		}
		chains, err := p.leaf.Cert.Verify(opts)
		if err != nil {
			t.Fatal(err)
		}
		got := Code(Policy{Anchors: NewAnchors(cas)}.CheckChains(chains, time.Now(), NewSet(crls...).Find))
		if got != node.Code {
			t.Errorf("CA %v, client's intermediate sent %v: Check says %q, Node %q", names, tc.withInter, got, node.Code)
		}
	}
}
