// Package testpki makes throwaway public key infrastructures for tests: a
// root CA, optional intermediates, leaf certificates with the extensions
// tlsemit cares about (SANs, OCSP and caIssuers URLs, Must-Staple), OCSP
// signers with and without the id-kp-OCSPSigning EKU, and OCSP responses
// signed in Go for scripted responders.
//
// Every key is ECDSA P-256 so a test can mint dozens of certificates in a
// few milliseconds. Helpers take a T (a *testing.T, or Exit in a program
// such as the demo) and call its Fatalf on failure, so in a test they must
// be called from the test's goroutine.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// T is the part of testing.TB the helpers use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Exit is a T for programs: its Fatalf prints the message and exits with
// status 1.
var Exit T = exitT{}

type exitT struct{}

func (exitT) Helper() {}

func (exitT) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// OIDMustStaple is the TLS Feature extension (RFC 7633) that marks a
// certificate as Must-Staple when it lists status_request (5).
var OIDMustStaple = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

// serials hands out unique serial numbers across every CA of the process,
// so two test PKIs never produce colliding CertIDs by accident.
var serials atomic.Int64

func init() { serials.Store(time.Now().UnixNano() & 0xffffffff) }

func nextSerial() *big.Int { return big.NewInt(serials.Add(1)) }

// CA is a certificate authority: a root when Parent is nil, else an
// intermediate signed by Parent.
type CA struct {
	Name   string
	Cert   *x509.Certificate
	DER    []byte
	Key    *ecdsa.PrivateKey
	Parent *CA
}

// Leaf is an end-entity certificate (or an OCSP signer) with its key and the
// CA that issued it.
type Leaf struct {
	Cert   *x509.Certificate
	DER    []byte
	Key    *ecdsa.PrivateKey
	Issuer *CA
}

// LeafOptions configure (*CA).Issue. The zero value gives a server
// certificate for "localhost" and 127.0.0.1, valid from an hour ago for a day,
// with no AIA URLs.
type LeafOptions struct {
	// CommonName defaults to the first DNS name, else "leaf".
	CommonName string
	// DNSNames defaults to ["localhost"] when both DNSNames and IPAddresses
	// are empty.
	DNSNames []string
	// IPAddresses defaults to [127.0.0.1] when both DNSNames and
	// IPAddresses are empty.
	IPAddresses []net.IP
	// OCSPServer lists the OCSP responder URLs put in the AIA extension.
	OCSPServer []string
	// IssuingCertificateURL lists the caIssuers URLs put in the AIA extension.
	IssuingCertificateURL []string
	// MustStaple adds the TLS Feature extension with status_request.
	MustStaple bool
	// NotBefore defaults to an hour ago, NotAfter to NotBefore + 25h.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage defaults to serverAuth.
	ExtKeyUsage []x509.ExtKeyUsage
	// Serial defaults to a process-unique number.
	Serial *big.Int
	// CRLDistributionPoints lists the CRL URLs put in the CRL
	// Distribution Points extension.
	CRLDistributionPoints []string
}

func newKey(t T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: generating key: %v", err)
	}
	return k
}

// NewCA returns a new self-signed root CA named name, valid from an hour ago
// for ten years.
func NewCA(t T, name string) *CA {
	t.Helper()
	return newCA(t, name, nil)
}

// Intermediate returns a new CA named name signed by ca.
func (ca *CA) Intermediate(t T, name string) *CA {
	t.Helper()
	return newCA(t, name, ca)
}

func newCA(t T, name string, parent *CA) *CA {
	t.Helper()
	return newCAWith(t, name, parent, CAOptions{})
}

func newCAWith(t T, name string, parent *CA, o CAOptions) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"tlsemit test PKI"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		CRLDistributionPoints: o.CRLDistributionPoints,
	}
	if o.KeyUsage != 0 {
		tmpl.KeyUsage = o.KeyUsage
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("testpki: creating CA %q: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parsing CA %q: %v", name, err)
	}
	return &CA{Name: name, Cert: cert, DER: der, Key: key, Parent: parent}
}

// Issue signs a new leaf certificate with ca.
func (ca *CA) Issue(t T, o LeafOptions) *Leaf {
	t.Helper()
	return ca.sign(t, leafTemplate(o))
}

// IssueRSA signs a new leaf certificate with an RSA 2048 key (for tests of
// what changes with the key type), returned with ca in its chain.
func (ca *CA) IssueRSA(t T, o LeafOptions) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testpki: generating RSA key: %v", err)
	}
	tmpl := leafTemplate(o)
	tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	leaf, der := ca.certify(t, tmpl, &key.PublicKey)
	return tls.Certificate{Certificate: [][]byte{der, ca.DER}, PrivateKey: key, Leaf: leaf}
}

// leafTemplate fills in o's defaults and returns the certificate to sign.
func leafTemplate(o LeafOptions) *x509.Certificate {
	if len(o.DNSNames) == 0 && len(o.IPAddresses) == 0 {
		o.DNSNames = []string{"localhost"}
		o.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if o.CommonName == "" {
		o.CommonName = "leaf"
		if len(o.DNSNames) > 0 {
			o.CommonName = o.DNSNames[0]
		}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(25 * time.Hour)
	}
	if o.ExtKeyUsage == nil {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if o.Serial == nil {
		o.Serial = nextSerial()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          o.Serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           o.ExtKeyUsage,
		BasicConstraintsValid: true,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPAddresses,
		OCSPServer:            o.OCSPServer,
		IssuingCertificateURL: o.IssuingCertificateURL,
		CRLDistributionPoints: o.CRLDistributionPoints,
	}
	if o.MustStaple {
		// SEQUENCE { INTEGER 5 }: the status_request TLS extension.
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{
			Id: OIDMustStaple, Value: []byte{0x30, 0x03, 0x02, 0x01, 0x05},
		})
	}
	return tmpl
}

// OCSPSigner returns a delegated OCSP responder certificate issued by ca.
// With withEKU it carries id-kp-OCSPSigning, as RFC 6960 requires; without it
// carries only clientAuth, which a correct verifier must refuse.
func (ca *CA) OCSPSigner(t T, withEKU bool) *Leaf {
	t.Helper()
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	name := ca.Name + " OCSP signer without EKU"
	if withEKU {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
		name = ca.Name + " OCSP signer"
	}
	now := time.Now()
	return ca.sign(t, &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
	})
}

func (ca *CA) sign(t T, tmpl *x509.Certificate) *Leaf {
	t.Helper()
	key := newKey(t)
	cert, der := ca.certify(t, tmpl, &key.PublicKey)
	return &Leaf{Cert: cert, DER: der, Key: key, Issuer: ca}
}

// certify signs tmpl for pub with ca's key.
func (ca *CA) certify(t T, tmpl *x509.Certificate, pub any) (*x509.Certificate, []byte) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("testpki: issuing %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parsing %q: %v", tmpl.Subject.CommonName, err)
	}
	return cert, der
}

// Pool returns a certificate pool holding only ca's root, for client
// RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	root := ca
	for root.Parent != nil {
		root = root.Parent
	}
	p := x509.NewCertPool()
	p.AddCert(root.Cert)
	return p
}

// Chain returns the DER certificates from l up to, but not including, the
// root: leaf, then each intermediate. With withChain false it is the leaf
// alone.
func (l *Leaf) Chain(withChain bool) [][]byte {
	chain := [][]byte{l.DER}
	if !withChain {
		return chain
	}
	for ca := l.Issuer; ca != nil && ca.Parent != nil; ca = ca.Parent {
		chain = append(chain, ca.DER)
	}
	return chain
}

// TLSCertificate returns l as a tls.Certificate. With withChain it also
// carries the issuer (for a leaf of a root CA, the root itself, since OCSP
// clients such as curl --cert-status need the issuer in the served chain;
// for an intermediate, every intermediate up to the root).
func (l *Leaf) TLSCertificate(withChain bool) tls.Certificate {
	chain := [][]byte{l.DER}
	if withChain {
		if l.Issuer.Parent == nil {
			chain = append(chain, l.Issuer.DER)
		} else {
			chain = l.Chain(true)
		}
	}
	return tls.Certificate{Certificate: chain, PrivateKey: l.Key, Leaf: l.Cert}
}

// SerialHex returns the serial number in upper-case hex, as openssl's
// index.txt writes it (an even number of digits).
func (l *Leaf) SerialHex() string {
	s := strings.ToUpper(l.Cert.SerialNumber.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// Serial returns the serial number as ocspfetch and the status page show
// it: upper-case hex without SerialHex's padding to whole bytes.
func (l *Leaf) Serial() string { return strings.ToUpper(l.Cert.SerialNumber.Text(16)) }

// CertPEM returns the PEM encoding of der.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyPEM returns the PKCS #8 PEM encoding of key.
func KeyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("testpki: marshaling key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WritePEM writes l's certificate and key to dir as <CN>.crt and <CN>.key
// (mode 0600) and returns their paths. It panics on I/O errors, which in a
// test's temporary directory mean the machine is broken.
func (l *Leaf) WritePEM(dir string) (certPath, keyPath string) {
	base := filepath.Join(dir, fileName(l.Cert.Subject.CommonName, l.SerialHex()))
	certPath, keyPath = base+".crt", base+".key"
	mustWrite(certPath, CertPEM(l.DER))
	mustWrite(keyPath, KeyPEM(l.Key))
	return certPath, keyPath
}

// WriteChainPEM writes the leaf followed by its issuer chain (as
// TLSCertificate(true) serves it) to dir and returns the file's path.
func (l *Leaf) WriteChainPEM(dir string) string {
	var b []byte
	for _, der := range l.TLSCertificate(true).Certificate {
		b = append(b, CertPEM(der)...)
	}
	p := filepath.Join(dir, fileName(l.Cert.Subject.CommonName, l.SerialHex())+".chain.pem")
	mustWrite(p, b)
	return p
}

// WritePEM writes ca's certificate and key to dir and returns their paths.
func (ca *CA) WritePEM(dir string) (certPath, keyPath string) {
	base := filepath.Join(dir, fileName(ca.Name, "ca"))
	certPath, keyPath = base+".crt", base+".key"
	mustWrite(certPath, CertPEM(ca.DER))
	mustWrite(keyPath, KeyPEM(ca.Key))
	return certPath, keyPath
}

func fileName(cn, suffix string) string {
	f := func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}
	return strings.Map(f, cn) + "-" + suffix
}

func mustWrite(path string, b []byte) {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		panic("testpki: " + err.Error())
	}
}
