package ocspfetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// httpsServer serves "hello" with net/http on plain crypto/tls, its
// certificate from f.GetCertificate over a get that always returns shared.
func httpsServer(t *testing.T, f *Fetcher, shared *tls.Certificate) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }),
		TLSConfig: &tls.Config{GetCertificate: f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return shared, nil
		})},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // a client's hang-up at the end of a test
	}
	done := make(chan struct{})
	go func() { defer close(done); hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { hs.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestGetCertificateRealClients: a net/http server whose GetCertificate is
// wrapped staples the real `openssl ocsp` responder's answer: curl
// --cert-status accepts it, openssl s_client -status shows it Good; an
// s_client that does not ask (no status_request) gets none and costs the
// Fetcher nothing. The shared certificate is never written to.
func TestGetCertificateRealClients(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	openssl := testenv.RequireTool(t, "openssl")
	p := startReal(t, false, 5)
	leaf := p.leaf(t, true)
	f, _ := newFetcher(t, Options{HTTPClient: p.r.Client})
	shared := leaf.TLSCertificate(true)
	port := httpsServer(t, f, &shared)
	caPath, _ := p.ca.WritePEM(t.TempDir())

	out, err := exec.Command(curl, "-sS", "--max-time", "20", "--cert-status", "--cacert", caPath,
		"--resolve", fmt.Sprintf("localhost:%d:127.0.0.1", port), fmt.Sprintf("https://localhost:%d/", port)).CombinedOutput()
	if err != nil || string(out) != "hello" {
		t.Fatalf("curl --cert-status: %v: %s\n%s", err, out, p.r.Output())
	}
	sClient := func(args ...string) string {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", "127.0.0.1:" + strconv.Itoa(port),
			"-servername", "localhost", "-CAfile", caPath}, args...)...)
		cmd.Stdin = bytes.NewReader(nil)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := sClient("-status"); !strings.Contains(out, "OCSP Response Status: successful") || !strings.Contains(out, "Cert Status: good") {
		t.Fatalf("s_client -status:\n%s", out)
	}
	before := f.Stats()
	if out := sClient(); !strings.Contains(out, "Verification: OK") || strings.Contains(out, "OCSP Response Status") {
		t.Fatalf("s_client without -status:\n%s", out)
	}
	if after := f.Stats(); after.Hits+after.Misses+after.Unstapled != before.Hits+before.Misses+before.Unstapled {
		t.Fatalf("a handshake that did not ask was answered: %+v, then %+v", before, after)
	}
	if st := f.Stats(); st.Requests != 1 || st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats %+v (want one request, then a hit)", st)
	}
	if shared.OCSPStaple != nil {
		t.Fatal("the shared tls.Certificate was stapled")
	}
}

// TestGetCertificatePerConnection: concurrent handshakes on one shared
// certificate each get the staple on a copy of their own (the race
// detector watches); a ClientHello without status_request gets the shared
// certificate itself, unasked about; get's errors and nil certificates
// pass through.
func TestGetCertificatePerConnection(t *testing.T) {
	s := newScripted(t, newClock())
	f, _ := newFetcher(t, Options{})
	shared := s.leaf.TLSCertificate(true)
	port := httpsServer(t, f, &shared)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: "localhost", RootCAs: s.ca.Pool()})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if resp, err := ocsp.ParseResponseForCert(c.ConnectionState().OCSPResponse, s.leaf.Cert, s.ca.Cert); err != nil || resp.Status != ocsp.Good {
				t.Errorf("staple: %v", err)
			}
		})
	}
	wg.Wait()
	if shared.OCSPStaple != nil {
		t.Fatal("the shared tls.Certificate was stapled")
	}

	get := f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &shared, nil })
	asked := &tls.ClientHelloInfo{Extensions: []uint16{statusRequest}}
	if c, err := get(asked); err != nil || c == &shared || c.OCSPStaple == nil || &c.Certificate[0][0] != &shared.Certificate[0][0] {
		t.Fatalf("asked: %v, same pointer %v", err, c == &shared)
	}
	before := f.Stats()
	if c, err := get(&tls.ClientHelloInfo{}); err != nil || c != &shared {
		t.Fatalf("not asked: %v, %p", err, c)
	}
	if f.Stats().Hits != before.Hits || f.Stats().Unstapled != before.Unstapled {
		t.Fatal("a ClientHello without status_request was looked up")
	}
	boom := errors.New("no certificate for that name")
	if c, err := f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, boom })(asked); c != nil || err != boom {
		t.Fatalf("get's error: %v, %v", c, err)
	}
	if c, err := f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil })(asked); c != nil || err != nil {
		t.Fatalf("get's nil certificate: %v, %v", c, err)
	}
}

// hangingResponder is a responder that answers nothing until released,
// and says when it has been asked.
func hangingResponder(t *testing.T) (s *scripted, asked <-chan struct{}) {
	s = newScripted(t, newClock())
	release, ask := make(chan struct{}), make(chan struct{}, 16)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		ask <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	return s, ask
}

// serveOne accepts one connection on ln and runs its server handshake
// with ctx, returning the handshake's error.
func serveOne(ln net.Listener, cfg *tls.Config, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- tls.Server(c, cfg).HandshakeContext(ctx)
	}()
	return done
}

// TestGetCertificateBudget: with a responder that does not answer, the
// handshake goes on unstapled once HandshakeBudget is spent, while the
// responder is still being waited for.
func TestGetCertificateBudget(t *testing.T) {
	s, asked := hangingResponder(t)
	f, rec := newFetcher(t, Options{HandshakeBudget: 100 * time.Millisecond})
	shared := s.leaf.TLSCertificate(true)
	port := httpsServer(t, f, &shared)
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: "localhost", RootCAs: s.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-asked
	if c.ConnectionState().OCSPResponse != nil || f.Stats().BudgetExceeded != 1 {
		t.Fatalf("staple %d bytes, stats %+v", len(c.ConnectionState().OCSPResponse), f.Stats())
	}
	if _, ok := rec.find(EventBudgetExceeded); !ok {
		t.Fatalf("no budget event: %v", rec.kinds())
	}
}

// TestGetCertificateHandshakeEnds: a handshake whose context ends while
// it waits for a fetch stops waiting then, however long the budget.
func TestGetCertificateHandshakeEnds(t *testing.T) {
	s, asked := hangingResponder(t)
	// A client without timeouts: the fetch waits as long as it may.
	f, _ := newFetcher(t, Options{HandshakeBudget: time.Hour, HTTPClient: &http.Client{}})
	shared := s.leaf.TLSCertificate(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := serveOne(ln, &tls.Config{GetCertificate: f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &shared, nil })}, ctx)
	go func() {
		if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: s.ca.Pool()}); err == nil {
			c.Close()
		}
	}()
	<-asked
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the handshake succeeded after its context ended")
		}
		if st := f.Stats(); st.Failures != 0 || st.Fetched != 0 {
			t.Fatalf("the handshake ended with the fetch, not with its context: %+v", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handshake still waits for the responder after its context ended")
	}
}

// TestGetCertificateFailClosed: with FailClosed, a handshake that asks
// for the status of a revoked certificate fails with the Fetcher's error.
func TestGetCertificateFailClosed(t *testing.T) {
	s := newScripted(t, newClock())
	s.set(s.respond(t, testpki.ResponseOptions{Status: ocsp.Revoked}))
	f, _ := newFetcher(t, Options{FailClosed: true})
	shared := s.leaf.TLSCertificate(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := serveOne(ln, &tls.Config{GetCertificate: f.GetCertificate(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &shared, nil })}, context.Background())
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: s.ca.Pool()})
	if err == nil {
		c.Close()
		t.Fatal("the client connected")
	}
	if err := <-done; !errors.Is(err, ErrRevoked) {
		t.Fatalf("server handshake: %v", err)
	}
}

// TestGetCertificateCRLOnly: through the wrapper, a certificate without a
// responder is served unstapled at once, and its revocation is learned
// from its CRL as through OCSPRequest.
func TestGetCertificateCRLOnly(t *testing.T) {
	p := newCRLPKI(t)
	leaf := p.ca.Issue(t, testpki.LeafOptions{CRLDistributionPoints: []string{p.url()}})
	p.ossl.Revoke(leaf)
	p.publish(time.Time{}, time.Time{})
	f, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shared := leaf.TLSCertificate(true)
	port := httpsServer(t, f, &shared)
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: "localhost", RootCAs: p.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c.ConnectionState().OCSPResponse != nil {
		t.Fatal("stapled")
	}
	testenv.WaitFor(t, func() bool {
		cs := certStatus(t, f, leaf)
		return cs.CRL != nil && cs.CRL.Status == ocsp.Revoked && errors.Is(cs.LastError, ErrRevoked)
	})
}
