package e2e_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// events records a Fetcher's events.
type events struct {
	mu  sync.Mutex
	evs []ocspfetch.Event
}

func (e *events) add(ev ocspfetch.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// find returns the first event of kind about l (by serial and subject).
func (e *events) find(kind ocspfetch.EventKind, l *testpki.Leaf) (ocspfetch.Event, bool) {
	serial := strings.ToUpper(l.Cert.SerialNumber.Text(16))
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Kind == kind && ev.Serial == serial && ev.Subject == l.Cert.Subject.String() {
			return ev, true
		}
	}
	return ocspfetch.Event{}, false
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.evs {
		fmt.Fprintf(&b, "[%s %s %v] ", ev.Kind, ev.Serial, ev.Err)
	}
	return b.String()
}

// newFetcher returns a Fetcher closed at the end of the test, recording its
// events.
func newFetcher(t *testing.T, o ocspfetch.Options) (*ocspfetch.Fetcher, *events) {
	t.Helper()
	rec := &events{}
	o.OnEvent, o.Logger = rec.add, quiet()
	f, err := ocspfetch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rec
}

// stapling is a tlsserver with f as its 'OCSPRequest' listener, serving
// HTTP ("ok <CN>") on 127.0.0.1.
type stapling struct {
	srv  *tlsserver.Server
	port int
}

func newStapling(t *testing.T, f *ocspfetch.Fetcher, def *testpki.Leaf, sni map[string]*testpki.Leaf, mods ...func(*tlsserver.Options)) *stapling {
	t.Helper()
	o := tlsserver.Options{
		Certificates:     []tls.Certificate{def.TLSCertificate(true)},
		HandshakeTimeout: 10 * time.Second,
	}
	for _, mod := range mods {
		mod(&o)
	}
	srv, err := tlsserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range sni {
		c := l.TLSCertificate(true)
		if err := srv.AddContext(name, tlsserver.SecureContext{Certificates: []tls.Certificate{c}}); err != nil {
			t.Fatal(err)
		}
	}
	srv.OnOCSPRequest(f.OCSPRequest)
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.TLS.ServerName)
	})}
	served := make(chan struct{})
	go func() { hs.Serve(srv.Listener()); close(served) }()
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return &stapling{srv: srv, port: srv.Addr().(*net.TCPAddr).Port}
}

// curl runs curl --cert-status against s for host, trusting ca, and returns
// its exit code and output.
func (s *stapling) curl(t *testing.T, ca *testpki.CA, host string) (int, string) {
	t.Helper()
	caPath, _ := ca.WritePEM(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := fmt.Sprintf("https://%s:%d/", host, s.port)
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "10", "--cacert", caPath,
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, s.port), "--cert-status", url).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("curl: %v\n%s", err, out)
	return -1, ""
}

// curlInvalidCertStatus is CURLE_SSL_INVALIDCERTSTATUS: the status
// returned by the server was not acceptable (or there was none).
const curlInvalidCertStatus = 91

// realLeaf issues a leaf for host from ca naming r as its responder and
// lists it in r's index.
func realLeaf(t *testing.T, ca *testpki.CA, r *ocsptest.Responder, host string) *testpki.Leaf {
	t.Helper()
	l := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{host}, OCSPServer: []string{r.URL}})
	r.Add(l)
	return l
}

// TestCurlAcceptsStaple: tlsserver + ocspfetch + openssl ocsp staple a
// response that curl --cert-status validates (the served chain carries the
// issuer), and openssl s_client -status prints it as good, over TLS 1.2 and
// 1.3. Without a 'OCSPRequest' listener curl refuses: the staple is what it
// accepts, not something it ignores.
func TestCurlAcceptsStaple(t *testing.T) {
	ocsptest.Required(t, "openssl", "curl")
	ca := testpki.NewCA(t, "e2e root")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 5})
	leaf := realLeaf(t, ca, r, "good.e2e.test")
	f, rec := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client})
	s := newStapling(t, f, leaf, nil)

	code, out := s.curl(t, ca, "good.e2e.test")
	if code != 0 || out != "ok good.e2e.test" {
		t.Fatalf("curl --cert-status: exit %d, output %q; fetcher events %s\nresponder: %s", code, out, rec, r.Output())
	}

	caPath, _ := ca.WritePEM(t.TempDir())
	for _, version := range []string{"-tls1_2", "-tls1_3"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", s.port),
			"-servername", "good.e2e.test", "-status", version, "-CAfile", caPath, "-verify_return_error")
		cmd.Stdin = strings.NewReader("Q\n")
		b, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("openssl s_client %s: %v\n%s", version, err, b)
		}
		for _, want := range []string{"OCSP Response Status: successful", "Cert Status: good",
			"Serial Number: " + leaf.SerialHex(), "Verify return code: 0 (ok)"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("s_client %s output lacks %q:\n%s", version, want, b)
			}
		}
	}
	// One fetch served all three handshakes.
	if n := r.Dials(); n != 1 {
		t.Errorf("responder asked %d times for three handshakes of one certificate, want 1", n)
	}

	// Control: the same server without the stapler fails curl --cert-status.
	bare, _ := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client, HandshakeBudget: -1})
	s2 := newStapling(t, bare, leaf, nil)
	s2.srv.RemoveAllListeners(tlsserver.EventOCSPRequest)
	if code, out := s2.curl(t, ca, "good.e2e.test"); code != curlInvalidCertStatus {
		t.Fatalf("curl --cert-status without a staple: exit %d, want %d; %q", code, curlInvalidCertStatus, out)
	}
}

// TestCurlRejectsRevoked: a revoked certificate. With StapleRevoked the
// Revoked answer is stapled and curl rejects the connection because of it;
// by default nothing is stapled and curl rejects it for lack of a staple.
func TestCurlRejectsRevoked(t *testing.T) {
	ocsptest.Required(t, "openssl", "curl")
	ca := testpki.NewCA(t, "e2e revoking root")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 5})
	leaf := realLeaf(t, ca, r, "revoked.e2e.test")
	r.Revoke(leaf)

	f, rec := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client, StapleRevoked: true})
	s := newStapling(t, f, leaf, nil)
	code, out := s.curl(t, ca, "revoked.e2e.test")
	if code != curlInvalidCertStatus || !strings.Contains(out, "revocation") {
		t.Fatalf("curl --cert-status on a stapled Revoked answer: exit %d, want %d with 'revocation'; %q; events %s",
			code, curlInvalidCertStatus, out, rec)
	}
	if _, ok := rec.find(ocspfetch.EventRevoked, leaf); !ok {
		t.Errorf("no revoked event: %s", rec)
	}

	// The staple curl refused really is the Revoked answer for this leaf.
	c := dial(t, s.port, "revoked.e2e.test", ca.Pool())
	resp := checkStaple(t, c, map[string]*testpki.CA{ca.Name: ca})
	if resp.Status != ocsp.Revoked {
		t.Fatalf("stapled status %d, want Revoked", resp.Status)
	}

	g, _ := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client})
	s2 := newStapling(t, g, leaf, nil)
	code, out = s2.curl(t, ca, "revoked.e2e.test")
	if code != curlInvalidCertStatus || strings.Contains(out, "ok ") {
		t.Fatalf("curl --cert-status, revoked not stapled: exit %d, want %d; %q", code, curlInvalidCertStatus, out)
	}
}

// TestRefuseInternalAddressesEndToEnd: RefuseInternalAddresses keeps the
// stapler away from a responder on 127.0.0.1 (the handshake goes on
// unstapled and the responder is never asked); the default reaches it.
func TestRefuseInternalAddressesEndToEnd(t *testing.T) {
	ca := testpki.NewCA(t, "e2e refusing root")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 5})
	leaf := realLeaf(t, ca, r, "internal.e2e.test")
	f, rec := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client, RefuseInternalAddresses: true})
	s := newStapling(t, f, leaf, nil)
	c := dial(t, s.port, "internal.e2e.test", ca.Pool())
	if st := c.ConnectionState().OCSPResponse; len(st) != 0 {
		t.Fatal("stapled from a refused responder address")
	}
	if ev, ok := rec.find(ocspfetch.EventFailed, leaf); !ok || !errors.Is(ev.Err, ocspfetch.ErrRefusedAddress) {
		t.Fatalf("refusal not reported: %s", rec)
	}
	if n := r.Dials(); n != 0 {
		t.Fatalf("refused responder was dialed %d times", n)
	}
	// Default options: the same responder is used.
	g, _ := newFetcher(t, ocspfetch.Options{HTTPClient: r.Client})
	s2 := newStapling(t, g, leaf, nil)
	checkStaple(t, dial(t, s2.port, "internal.e2e.test", ca.Pool()), map[string]*testpki.CA{ca.Name: ca})
}

// dial handshakes with 127.0.0.1:port for host, asking for status (Go's
// client always does), and returns the connection, closed at test end.
func dial(t *testing.T, port int, host string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		t.Fatalf("dial %s: %v", host, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkStaple parses c's staple for the certificate c was served and checks
// it against that certificate's issuer (looked up by name in cas): the
// serial is the served certificate's and the signature verifies with the
// issuer's key (directly or through a delegate the issuer signed).
func checkStaple(t *testing.T, c *tls.Conn, cas map[string]*testpki.CA) *ocsp.Response {
	t.Helper()
	if err := stapleError(c.ConnectionState(), cas); err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	resp, _ := ocsp.ParseResponse(cs.OCSPResponse, nil)
	return resp
}

// stapleError is checkStaple without a testing.T, for use from many
// goroutines.
func stapleError(cs tls.ConnectionState, cas map[string]*testpki.CA) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no peer certificate")
	}
	served := cs.PeerCertificates[0]
	if len(cs.OCSPResponse) == 0 {
		return fmt.Errorf("no staple for %s", served.Subject.CommonName)
	}
	ca := cas[served.Issuer.CommonName]
	if ca == nil {
		return fmt.Errorf("served certificate from unknown issuer %q", served.Issuer.CommonName)
	}
	resp, err := ocsp.ParseResponse(cs.OCSPResponse, nil)
	if err != nil {
		return fmt.Errorf("staple does not parse: %v", err)
	}
	if resp.SerialNumber.Cmp(served.SerialNumber) != 0 {
		return fmt.Errorf("staple for serial %X on a connection serving %X (%s)",
			resp.SerialNumber, served.SerialNumber, served.Subject.CommonName)
	}
	// ParseResponseForCert checks the signature against the issuer (or
	// the embedded delegate, which must be signed by the issuer) and the
	// CertID's issuer hashes.
	if _, err := ocsp.ParseResponseForCert(cs.OCSPResponse, served, ca.Cert); err != nil {
		return fmt.Errorf("staple for %s does not verify against %s: %v", served.Subject.CommonName, ca.Name, err)
	}
	if resp.Certificate == nil || resp.Certificate.Equal(ca.Cert) {
		if err := resp.CheckSignatureFrom(ca.Cert); err != nil {
			return fmt.Errorf("staple for %s not signed by %s: %v", served.Subject.CommonName, ca.Name, err)
		}
	} else if err := resp.Certificate.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("staple for %s signed by a delegate %s did not issue: %v", served.Subject.CommonName, ca.Name, err)
	}
	return nil
}

// dialErr is dial without a testing.T; the caller closes the connection.
func dialErr(port int, host string, roots *x509.CertPool) (*tls.Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", host, err)
	}
	return c, nil
}
