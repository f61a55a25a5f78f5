package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"
)

// benchPKI is the one certificate every server under comparison serves,
// with its issuer and a Good OCSP response to staple.
type benchPKI struct {
	caDER, leafDER []byte
	leafKey        *ecdsa.PrivateKey
	staple         []byte
	certPath       string // leaf + CA, PEM
	keyPath        string
	caPath         string
	staplePath     string
}

func newBenchPKI(dir string) (*benchPKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "benchtable CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	staple, err := ocsp.CreateResponse(ca, ca, ocsp.Response{
		Status: ocsp.Good, SerialNumber: leaf.SerialNumber, IssuerHash: crypto.SHA1,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
	}, caKey)
	if err != nil {
		return nil, err
	}
	p := &benchPKI{caDER: caDER, leafDER: leafDER, leafKey: leafKey, staple: staple,
		certPath: filepath.Join(dir, "leaf.pem"), keyPath: filepath.Join(dir, "leaf.key"),
		caPath: filepath.Join(dir, "ca.pem"), staplePath: filepath.Join(dir, "staple.der")}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, err
	}
	chain := append(pemCert(leafDER), pemCert(caDER)...)
	for path, b := range map[string][]byte{
		p.certPath: chain, p.caPath: pemCert(caDER), p.staplePath: staple,
		p.keyPath: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (p *benchPKI) tlsCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.leafDER, p.caDER}, PrivateKey: p.leafKey}
}

func (p *benchPKI) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	ca, _ := x509.ParseCertificate(p.caDER)
	pool.AddCert(ca)
	return pool
}

// loadBenchPKI reads what newBenchPKI wrote, for a server in another
// process.
func loadBenchPKI(dir string) (*benchPKI, error) {
	p := &benchPKI{certPath: filepath.Join(dir, "leaf.pem"), keyPath: filepath.Join(dir, "leaf.key"),
		caPath: filepath.Join(dir, "ca.pem"), staplePath: filepath.Join(dir, "staple.der")}
	cert, err := tls.LoadX509KeyPair(p.certPath, p.keyPath)
	if err != nil {
		return nil, err
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("benchtable: unexpected key type")
	}
	p.leafDER, p.caDER, p.leafKey = cert.Certificate[0], cert.Certificate[1], key
	if p.staple, err = os.ReadFile(p.staplePath); err != nil {
		return nil, err
	}
	return p, nil
}
