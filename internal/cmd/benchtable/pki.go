package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// benchPKI is the one certificate every server under comparison serves,
// with its issuer and a Good OCSP response to staple. newBenchPKI writes it
// to a directory, from which the servers, each in its own process, load it.
type benchPKI struct {
	cert   tls.Certificate // leaf and CA
	staple []byte
}

const (
	chainFile  = "leaf.pem"
	keyFile    = "leaf.key"
	stapleFile = "staple.der"
)

func newBenchPKI(dir string) (*benchPKI, error) {
	ca := testpki.NewCA(testpki.Exit, "benchtable CA")
	leaf := ca.Issue(testpki.Exit, testpki.LeafOptions{})
	staple := ca.OCSPResponse(testpki.Exit, leaf.Cert, testpki.ResponseOptions{})
	chain := append(testpki.CertPEM(leaf.DER), testpki.CertPEM(ca.DER)...)
	for name, b := range map[string][]byte{chainFile: chain, keyFile: testpki.KeyPEM(leaf.Key), stapleFile: staple} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return loadBenchPKI(dir)
}

func loadBenchPKI(dir string) (*benchPKI, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, chainFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	if len(cert.Certificate) != 2 {
		return nil, errors.New("benchtable: want leaf and CA in " + chainFile)
	}
	staple, err := os.ReadFile(filepath.Join(dir, stapleFile))
	if err != nil {
		return nil, err
	}
	return &benchPKI{cert: cert, staple: staple}, nil
}

func (p *benchPKI) tlsCertificate() tls.Certificate { return p.cert }

func (p *benchPKI) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	ca, _ := x509.ParseCertificate(p.cert.Certificate[1])
	pool.AddCert(ca)
	return pool
}
