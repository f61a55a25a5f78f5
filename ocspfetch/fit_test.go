package ocspfetch

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// handshake runs a real crypto/tls handshake at version v: the server
// serves leaf and its issuer with whatever f's OCSPRequest staples, the
// client (which always asks for status) verifies the chain. It returns the
// staple the client received.
func handshake(t *testing.T, f *Fetcher, leaf *testpki.Leaf, v uint16) ([]byte, error) {
	t.Helper()
	chain := leaf.TLSCertificate(true)
	srvConf := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c := chain
		f.OCSPRequest(leaf.DER, leaf.Issuer.DER, func(err error, der []byte) { c.OCSPStaple = der })
		return &c, nil
	}}
	cliConf := &tls.Config{RootCAs: leaf.Issuer.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v}
	// Loopback TCP rather than net.Pipe: a side that fails writes its
	// alert while the other may be writing too, which an unbuffered pipe
	// turns into a deadlock.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second)) // deadlock guard
		srvErr <- tls.Server(c, srvConf).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cli := tls.Client(c, cliConf)
	err = cli.Handshake()
	if err != nil {
		c.Close()
	}
	if serr := <-srvErr; serr != nil {
		return nil, errors.Join(errors.New("server: "+serr.Error()), err)
	}
	if err != nil {
		return nil, err
	}
	return cli.ConnectionState().OCSPResponse, nil
}

var tlsVersions = map[string]uint16{"TLS 1.2": tls.VersionTLS12, "TLS 1.3": tls.VersionTLS13}

// padCerts returns der, a genuine signed response, with first (the
// signer's certificate, or the issuer's as openssl embeds it) and then
// filler added to the certs field, which the signature does not cover,
// until the whole response is size bytes long (or a few more).
func padCerts(t *testing.T, der []byte, first *x509.Certificate, size int) []byte {
	t.Helper()
	var outer struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	var basic struct {
		TBS, Alg, Sig asn1.RawValue
		Certs         []asn1.RawValue `asn1:"explicit,optional,tag:0"`
	}
	if _, err := asn1.Unmarshal(outer.Bytes.Response, &basic); err != nil {
		t.Fatal(err)
	}
	build := func(filler int) []byte {
		b := basic
		b.Certs = []asn1.RawValue{{FullBytes: first.Raw}, {Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: make([]byte, filler)}}
		inner, err := asn1.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		o := outer
		o.Bytes.Response = inner
		out, err := asn1.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Length octets grow with the filler, so some sizes cannot be hit
	// exactly: the result is the first one at least size bytes long.
	for filler := max(size-len(build(0))-16, 0); ; filler++ {
		if out := build(filler); len(out) >= size {
			return out
		}
	}
}

// hugeSigner returns a genuine delegated OCSP signer of ca whose
// certificate carries a private extension of extra bytes.
func hugeSigner(t *testing.T, ca *testpki.CA, extra int) *testpki.Leaf {
	t.Helper()
	small := ca.OCSPSigner(t, true)
	tmpl := *small.Cert
	tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Value: make([]byte, extra)}}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Cert, small.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.Leaf{Cert: cert, DER: der, Key: small.Key, Issuer: ca}
}

// TestPaddedResponseStapledMinimal: a genuine response padded in its
// unsigned certs field past what a TLS 1.3 CertificateEntry (65,527 bytes)
// and Go's TLS 1.2 clients (65,532) accept is stapled without the padding,
// keeping only the certificate that verified the signature (none when the
// issuer signed), and TLS 1.2 and 1.3 handshakes succeed with it.
func TestPaddedResponseStapledMinimal(t *testing.T) {
	for _, delegated := range []bool{false, true} {
		t.Run(map[bool]string{false: "CA-signed", true: "delegated"}[delegated], func(t *testing.T) {
			clk := newClock()
			s := newScripted(t, clk)
			o := testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute)}
			first := s.ca.Cert
			if delegated {
				o.Signer = s.ca.OCSPSigner(t, true)
				first = o.Signer.Cert
			}
			padded := padCerts(t, s.ca.OCSPResponse(t, s.leaf.Cert, o), first, 65540)
			if _, err := ocsp.ParseResponseForCert(padded, s.leaf.Cert, s.ca.Cert); err != nil {
				t.Fatalf("the padded response is not genuine: %v", err)
			}
			s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, padded) })
			f, rec := newFetcher(t, Options{Now: clk.Now, MaxResponseSize: 1 << 20})
			for name, v := range tlsVersions {
				got, err := handshake(t, f, s.leaf, v)
				if err != nil {
					t.Fatalf("%s handshake with the padded response: %v (events %v)", name, err, rec.kinds())
				}
				resp, err := ocsp.ParseResponseForCert(got, s.leaf.Cert, s.ca.Cert)
				if err != nil || resp.Status != ocsp.Good {
					t.Fatalf("%s: staple %d bytes: %v", name, len(got), err)
				}
				if delegated != (resp.Certificate != nil) || delegated && !resp.Certificate.Equal(o.Signer.Cert) {
					t.Fatalf("%s: embedded certificate %v, want the delegate only when delegated", name, resp.Certificate)
				}
				if len(got) > 2048 {
					t.Fatalf("%s: staple still %d bytes", name, len(got))
				}
			}
		})
	}
}

// TestOversizedStapleRefused: a genuine response that does not fit beside
// the chain even without padding (its delegated signer's certificate is
// 66 KB) is refused as a fault: a cold certificate goes unstapled, a cached
// staple stays, and handshakes in TLS 1.2 and 1.3 keep succeeding.
func TestOversizedStapleRefused(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	huge := hugeSigner(t, s.ca, 66000)
	hugeResp := func() []byte {
		return s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute), Signer: huge})
	}
	cold := hugeResp()
	s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, cold) })
	g, grec := newFetcher(t, Options{Now: clk.Now, MaxResponseSize: 1 << 20})
	for name, v := range tlsVersions {
		got, err := handshake(t, g, s.leaf, v)
		if err != nil || got != nil {
			t.Fatalf("cold, %s: %d bytes stapled, err %v", name, len(got), err)
		}
	}
	if ev, ok := grec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrResponseTooLarge) {
		t.Fatalf("cold: want EventFailed with ErrResponseTooLarge, got %v", grec.kinds())
	}

	s.set(s.good(t))
	f, rec := newFetcher(t, Options{Now: clk.Now, MaxResponseSize: 1 << 20})
	good := request(t, f, s.leaf.DER, s.ca.DER)
	if good.der == nil {
		t.Fatal("no staple to start with")
	}
	clk.Advance(35 * time.Minute)
	later := hugeResp()
	s.set(func(w http.ResponseWriter, r *http.Request) { writeOCSP(w, later) })
	if n := refreshNow(t, f, clk.Now()); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrResponseTooLarge) {
		t.Fatalf("refresh: want EventFailed with ErrResponseTooLarge, got %v", rec.kinds())
	}
	for name, v := range tlsVersions {
		got, err := handshake(t, f, s.leaf, v)
		if err != nil || !bytes.Equal(got, good.der) {
			t.Fatalf("%s after the oversized refresh: err %v, cached staple kept: %v", name, err, bytes.Equal(got, good.der))
		}
	}
}

// TestPaddedResponseFromStore: a padded genuine response found in a
// DirStore (kept there by an older version, or planted) passes the same
// rule: a restarted server staples it minimal, without asking the
// responder, and TLS 1.3 handshakes succeed.
func TestPaddedResponseFromStore(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	dir := t.TempDir()
	open := func() (*Fetcher, *recorder) { return dirFetcher(t, dir, Options{Now: clk.Now}) }
	f1, _ := open()
	if res := request(t, f1, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatal("no staple")
	}
	f1.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ocsp"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	stored, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], padCerts(t, stored, s.ca.Cert, 65535), 0o600); err != nil {
		t.Fatal(err)
	}
	f2, rec := open()
	for name, v := range tlsVersions {
		got, err := handshake(t, f2, s.leaf, v)
		if err != nil || got == nil || len(got) > 2048 {
			t.Fatalf("%s with the padded stored response: %d bytes, err %v (events %v)", name, len(got), err, rec.kinds())
		}
	}
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("%d responder requests, want 1: the stored response should have served", n)
	}
}
