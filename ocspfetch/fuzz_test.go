package ocspfetch

// Fuzz targets for what an attacker (a hostile responder or certificate)
// controls: the OCSP response bytes handed to the verifier, and the AIA
// URLs a certificate carries. The seeds in testdata/fuzz were made by
// TestFuzzSeedsRegenerate (OCSPFETCH_FUZZ_REGEN=1) from a deterministic
// CA key and a fixed clock, so they stay valid.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// fzNow is the fuzz targets' clock: the seeds' responses are valid then.
var fzNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fzCA returns a CA whose key (and so whose name and key hashes) is the
// same in every run, derived from label.
func fzCA(tb testing.TB, label string) *testpki.CA {
	tb.Helper()
	seed := sha256.Sum256([]byte("ocspfetch fuzz " + label))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: label},
		NotBefore:             fzNow.AddDate(-5, 0, 0),
		NotAfter:              fzNow.AddDate(5, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testpki.CA{Name: label, Cert: cert, DER: der, Key: key}
}

// fzFixture is the certificate the verifier is asked about.
type fzFixture struct {
	ca, other   *testpki.CA
	leaf, leaf2 *testpki.Leaf
	id          certID
}

var (
	fzOnce sync.Once
	fzFix  *fzFixture
)

func fzSetup(tb testing.TB) *fzFixture {
	fzOnce.Do(func() {
		ca := fzCA(tb, "fuzz CA")
		x := &fzFixture{ca: ca, other: fzCA(tb, "fuzz other CA")}
		validity := testpki.LeafOptions{NotBefore: fzNow.AddDate(0, -1, 0), NotAfter: fzNow.AddDate(0, 1, 0)}
		o := validity
		o.Serial = big.NewInt(0x1001)
		x.leaf = ca.Issue(tb, o)
		o.Serial = big.NewInt(0x1002)
		x.leaf2 = ca.Issue(tb, o)
		id, err := newCertID(crypto.SHA1, x.leaf.Cert, ca.Cert)
		if err != nil {
			tb.Fatal(err)
		}
		x.id = id
		fzFix = x
	})
	if fzFix == nil {
		tb.Fatal("fuzz fixture failed")
	}
	return fzFix
}

// fzSentinels are the errors every reported error wraps exactly one of.
var fzSentinels = []error{ErrNoResponder, ErrNoIssuer, ErrBadCertificate, ErrRefusedAddress,
	ErrUnsupportedScheme, ErrTooManyRedirects, ErrUnreachable, ErrHTTPStatus, ErrResponseTooLarge,
	ErrMalformed, ErrResponderStatus, ErrWrongCertificate, ErrBadSignature, ErrBadSigner, ErrNotYetValid,
	ErrExpired, ErrRevoked, ErrUnknownStatus, ErrBudgetExceeded, ErrCacheMiss, ErrClosed}

func fzSentinelsOf(err error) []error {
	var out []error
	for _, s := range fzSentinels {
		if errors.Is(err, s) {
			out = append(out, s)
		}
	}
	return out
}

// FuzzVerify feeds response bytes to the verifier for one certificate.
// Whatever the bytes, it does not panic; what it accepts (Good, or
// Revoked reported as ErrRevoked) is a response about exactly that
// certificate that x/crypto/ocsp verifies against the issuer, current at
// the clock; every rejection wraps exactly one sentinel.
func FuzzVerify(f *testing.F) {
	x := fzSetup(f)
	const skew = DefaultClockSkew
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, minimal, next, err := verify(der, x.leaf.Cert, x.ca.Cert, x.id, fzNow, skew)
		if err != nil {
			if s := fzSentinelsOf(err); len(s) != 1 {
				t.Fatalf("error %q wraps %d sentinels (%v), want exactly one", err, len(s), s)
			}
		}
		accepted := err == nil || errors.Is(err, ErrRevoked) || errors.Is(err, ErrUnknownStatus)
		if !accepted {
			if resp != nil {
				t.Fatalf("rejected (%v) but returned a response", err)
			}
			return
		}
		if resp == nil {
			t.Fatalf("accepted (err %v) without a response", err)
		}
		want := map[error]int{nil: ocsp.Good, ErrRevoked: ocsp.Revoked, ErrUnknownStatus: ocsp.Unknown}
		for e, st := range want {
			if (e == nil && err == nil || e != nil && errors.Is(err, e)) && resp.Status != st {
				t.Fatalf("error %v with status %d", err, resp.Status)
			}
		}
		if resp.SerialNumber.Cmp(x.leaf.Cert.SerialNumber) != 0 {
			t.Fatalf("accepted a response about serial %X for %X", resp.SerialNumber, x.leaf.Cert.SerialNumber)
		}
		if _, perr := ocsp.ParseResponseForCert(der, x.leaf.Cert, x.ca.Cert); perr != nil {
			t.Fatalf("accepted a response x/crypto/ocsp refuses with the issuer: %v", perr)
		}
		if resp.Certificate == nil || resp.Certificate.Equal(x.ca.Cert) {
			if serr := resp.CheckSignatureFrom(x.ca.Cert); serr != nil {
				t.Fatalf("accepted a response the issuer did not sign: %v", serr)
			}
		} else {
			if resp.Certificate.CheckSignatureFrom(x.ca.Cert) != nil || !slices.Contains(resp.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
				t.Fatal("accepted a delegate the issuer did not authorize")
			}
		}
		if resp.ThisUpdate.After(fzNow.Add(skew)) || !fzNow.Before(next) || !next.After(resp.ThisUpdate) {
			t.Fatalf("accepted a response not current at %v: thisUpdate %v, effective nextUpdate %v", fzNow, resp.ThisUpdate, next)
		}
		// What is stapled: the same answer, verifying as the original did,
		// carrying at most the delegate, never larger.
		mresp, merr := ocsp.ParseResponseForCert(minimal, x.leaf.Cert, x.ca.Cert)
		if merr != nil {
			t.Fatalf("the minimal form does not parse with the issuer: %v", merr)
		}
		if !bytes.Equal(mresp.TBSResponseData, resp.TBSResponseData) || !bytes.Equal(mresp.Signature, resp.Signature) {
			t.Fatal("the minimal form changed what is signed")
		}
		if (mresp.Certificate == nil) != (resp.Certificate == nil) || len(minimal) > len(der) {
			t.Fatalf("minimal form: embedded %v (original %v), %d bytes (original %d)", mresp.Certificate != nil, resp.Certificate != nil, len(minimal), len(der))
		}
		if again, _, _, aerr := verify(minimal, x.leaf.Cert, x.ca.Cert, x.id, fzNow, skew); again == nil || (aerr == nil) != (err == nil) || aerr != nil && classify(aerr) != classify(err) {
			t.Fatalf("the minimal form verifies differently: %v, was %v", aerr, err)
		}
	})
}

// fzTransport records the requests a Fetcher sends and fails them.
type fzTransport struct {
	mu   sync.Mutex
	reqs []*url.URL
}

func (c *fzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.URL)
	c.mu.Unlock()
	return nil, errors.New("fuzz: no network")
}

func (c *fzTransport) take() []*url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = nil
	return r
}

// fzSameOrigin reports whether u goes where base says: same scheme, host
// and port ("host:" and "host" are the same place).
func fzSameOrigin(u, base *url.URL) bool {
	return u.Scheme == base.Scheme && u.Hostname() == base.Hostname() && u.Port() == base.Port()
}

// fzHTTPURL is the rule, stated independently: an absolute http(s) URL
// with a host.
func fzHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// FuzzResponderURL builds a certificate whose AIA carries the fuzzed
// OCSP and caIssuers URLs and checks the extraction: ResponderURL returns
// the first http(s) OCSP URL with a host (or wraps ErrNoResponder when
// there is none), and the GET and POST requests built from it, and the
// caIssuers request, go to exactly that scheme and host, never to another.
func FuzzResponderURL(f *testing.F) {
	x := fzSetup(f)
	tr := &fzTransport{}
	fe, err := New(Options{HTTPClient: &http.Client{Transport: tr}, Now: func() time.Time { return fzNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fe.Close() })
	f.Fuzz(func(t *testing.T, ocsp1, ocsp2, issuer string) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7),
			Subject:      pkix.Name{CommonName: "fuzz leaf"},
			NotBefore:    fzNow.AddDate(0, -1, 0),
			NotAfter:     fzNow.AddDate(0, 1, 0),
			OCSPServer:   []string{ocsp1, ocsp2},
		}
		if issuer != "" {
			tmpl.IssuingCertificateURL = []string{issuer}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, x.ca.Cert, x.ca.Key.Public(), x.ca.Key)
		if err != nil {
			return // not encodable (IA5String)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		got, err := ResponderURL(cert)
		want := ""
		for _, u := range cert.OCSPServer {
			if fzHTTPURL(u) {
				want = u
				break
			}
		}
		if want == "" {
			if err == nil || !errors.Is(err, ErrNoResponder) || got != "" {
				t.Fatalf("ResponderURL(%q) = %q, %v; want ErrNoResponder", cert.OCSPServer, got, err)
			}
		} else if err != nil || got != want {
			t.Fatalf("ResponderURL(%q) = %q, %v; want %q", cert.OCSPServer, got, err, want)
		}
		if want != "" {
			base, _ := url.Parse(want)
			for _, size := range []int{16, 400} { // GET, then POST
				_, perr := fe.postOCSP(context.Background(), want, make([]byte, size))
				if perr == nil {
					t.Fatal("request succeeded without a network")
				}
				if s := fzSentinelsOf(perr); len(s) != 1 {
					t.Fatalf("error %q wraps %v", perr, s)
				}
				for _, u := range tr.take() {
					if !fzSameOrigin(u, base) {
						t.Fatalf("responder URL %q: %d-byte request sent to %s://%s", want, size, u.Scheme, u.Host)
					}
				}
			}
		}
		wantIssuer := ""
		for _, u := range cert.IssuingCertificateURL {
			if fzHTTPURL(u) {
				wantIssuer = u
				break
			}
		}
		if gotIssuer := issuerURL(cert); gotIssuer != wantIssuer {
			t.Fatalf("issuerURL(%q) = %q, want %q", cert.IssuingCertificateURL, gotIssuer, wantIssuer)
		}
		if wantIssuer != "" {
			base, _ := url.Parse(wantIssuer)
			if _, ierr := fe.fetchIssuer(context.Background(), cert); ierr == nil {
				t.Fatal("issuer fetched without a network")
			}
			for _, u := range tr.take() {
				if !fzSameOrigin(u, base) {
					t.Fatalf("caIssuers URL %q: request sent to %s://%s", wantIssuer, u.Scheme, u.Host)
				}
			}
		}
	})
}

// TestFuzzSeedsRegenerate rewrites the FuzzVerify and FuzzResponderURL
// seed corpora; run it with OCSPFETCH_FUZZ_REGEN=1 after changing the
// fixture.
func TestFuzzSeedsRegenerate(t *testing.T) {
	if os.Getenv("OCSPFETCH_FUZZ_REGEN") != "1" {
		t.Skip("set OCSPFETCH_FUZZ_REGEN=1 to rewrite testdata/fuzz/FuzzVerify and FuzzResponderURL")
	}
	x := fzSetup(t)
	write := func(target, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			case string:
				s += fmt.Sprintf("string(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	this, next := fzNow.Add(-time.Minute), fzNow.Add(time.Hour)
	signerOpts := func(eku x509.ExtKeyUsage) testpki.LeafOptions {
		return testpki.LeafOptions{CommonName: "fuzz OCSP signer", NotBefore: fzNow.AddDate(0, -1, 0),
			NotAfter: fzNow.AddDate(0, 1, 0), ExtKeyUsage: []x509.ExtKeyUsage{eku}}
	}
	resp := func(ca *testpki.CA, o testpki.ResponseOptions) []byte {
		if o.ThisUpdate.IsZero() {
			o.ThisUpdate = this
		}
		if o.NextUpdate.IsZero() && !o.NoNextUpdate {
			o.NextUpdate = next
		}
		return ca.OCSPResponse(t, x.leaf.Cert, o)
	}
	good := resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good})
	for name, der := range map[string][]byte{
		"good-ca-signed":     good,
		"good-delegated":     resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, Signer: x.ca.Issue(t, signerOpts(x509.ExtKeyUsageOCSPSigning))}),
		"delegate-no-eku":    resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, Signer: x.ca.Issue(t, signerOpts(x509.ExtKeyUsageClientAuth))}),
		"revoked":            resp(x.ca, testpki.ResponseOptions{Status: ocsp.Revoked, RevokedAt: this.Add(-time.Hour)}),
		"unknown":            resp(x.ca, testpki.ResponseOptions{Status: ocsp.Unknown}),
		"other-serial":       resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, SerialOverride: x.leaf2.Cert}),
		"other-issuer":       resp(x.other, testpki.ResponseOptions{Status: ocsp.Good}),
		"expired":            resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, ThisUpdate: fzNow.Add(-2 * time.Hour), NextUpdate: fzNow.Add(-time.Hour)}),
		"this-update-future": resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, ThisUpdate: fzNow.Add(time.Hour), NextUpdate: fzNow.Add(2 * time.Hour)}),
		"no-next-update":     resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, NoNextUpdate: true}),
		"sha256-certid":      resp(x.ca, testpki.ResponseOptions{Status: ocsp.Good, IssuerHash: crypto.SHA256}),
		"try-later":          ocsp.TryLaterErrorResponse,
		"truncated":          good[:len(good)/2],
		"html":               []byte("<html><body>502 Bad Gateway</body></html>"),
	} {
		write("FuzzVerify", name, der)
	}
	for name, urls := range map[string][3]string{
		"plain-http":          {"http://ocsp.example.com/", "", "http://ca.example.com/ca.der"},
		"ldap-then-https":     {"ldap://ldap.example.com/cn=ca", "https://ocsp.example.com:8443/ocsp", ""},
		"no-host":             {"http:///path", "http:relative", "file:///etc/passwd"},
		"userinfo-and-ipv6":   {"http://user:pass@[::1]:80/", "", "https://[fe80::1%25eth0]/ca"},
		"query-and-fragment":  {"http://ocsp.example.com/a?b=c#frag", "", "http://ca.example.com/?x=/y"},
		"upper-case-scheme":   {"HTTP://OCSP.EXAMPLE.COM/", "", "HtTpS://ca.example.com"},
		"backslash-and-at":    {"http://evil.example\\@ocsp.example.com/", "http://a@b@c/", ""},
		"percent-encoded-at":  {"http://ocsp.example.com%40evil.example/", "", ""},
		"empty":               {"", "", ""},
		"trailing-dot-port0":  {"http://ocsp.example.com.:0/", "", ""},
		"javascript-then-ftp": {"javascript:alert(1)", "ftp://ocsp.example.com/", "data:text/plain,x"},
	} {
		write("FuzzResponderURL", name, urls[0], urls[1], urls[2])
	}
}

// TestFuzzVerifySeeds pins what each FuzzVerify seed means, so that a seed
// that stops exercising its path (a fixture change, a clock) is noticed.
func TestFuzzVerifySeeds(t *testing.T) {
	x := fzSetup(t)
	for name, want := range map[string]error{
		"good-ca-signed": nil, "good-delegated": nil, "no-next-update": nil, "sha256-certid": nil,
		"delegate-no-eku": ErrBadSigner, "revoked": ErrRevoked, "unknown": ErrUnknownStatus,
		"other-serial": ErrWrongCertificate, "other-issuer": ErrWrongCertificate, "expired": ErrExpired,
		"this-update-future": ErrNotYetValid, "try-later": ErrResponderStatus, "truncated": ErrMalformed,
		"html": ErrMalformed,
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		var lit string
		if _, err := fmt.Sscanf(string(raw), "go test fuzz v1\n[]byte(%q)", &lit); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _, _, err = verify([]byte(lit), x.leaf.Cert, x.ca.Cert, x.id, fzNow, DefaultClockSkew)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("seed %s: verify = %v, want %v", name, err, want)
		}
	}
}
