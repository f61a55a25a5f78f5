package loadtest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

const (
	handshakes  = 20000
	concurrency = 256
)

func requireLoad(t *testing.T) {
	if os.Getenv("TLSEMIT_LOAD") != "1" {
		t.Skip("load test: set TLSEMIT_LOAD=1 (make load)")
	}
	ocsptest.Required(t, "openssl")
	raiseFileLimit(t, 4*concurrency)
}

// raiseFileLimit raises the soft open-file limit to the hard one and fails
// t if that is still below need.
func raiseFileLimit(t *testing.T, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising RLIMIT_NOFILE: %v", err)
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < need {
		t.Fatalf("RLIMIT_NOFILE %d is below the %d open files this test needs", lim.Cur, need)
	}
}

// vmHWM returns the process's peak resident set size from /proc.
func vmHWM() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}

// result is what a scenario measured.
type result struct {
	n, errs, good, wrong int64
	firstErrs            []error
	elapsed              time.Duration
}

// setup is a server stapling through a Fetcher with openssl ocsp behind
// it, serving two certificates (default context and one SNI context).
type setup struct {
	ca     *testpki.CA
	r      *ocsptest.Responder
	leaves map[string]*testpki.Leaf // by server name
	srv    *tlsserver.Server
	f      *ocspfetch.Fetcher
	pool   *x509.CertPool
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	ca := testpki.NewCA(t, "load root")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	s := &setup{ca: ca, r: r, leaves: map[string]*testpki.Leaf{}, pool: ca.Pool()}
	for _, name := range []string{"a.load.test", "b.load.test"} {
		l := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{name}, OCSPServer: []string{r.URL}})
		r.Add(l)
		s.leaves[name] = l
	}
	return s
}

func (s *setup) start(t *testing.T) {
	t.Helper()
	f, err := ocspfetch.New(ocspfetch.Options{HTTPClient: s.r.Client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{s.leaves["a.load.test"].TLSCertificate(true)},
		HandshakeTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := s.leaves["b.load.test"].TLSCertificate(true)
	if err := srv.AddContext("b.load.test", tlsserver.SecureContext{Certificates: []tls.Certificate{b}}); err != nil {
		t.Fatal(err)
	}
	srv.OnOCSPRequest(f.OCSPRequest)
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() }) // a handshake server
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.srv, s.f = srv, f
}

func (s *setup) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	s.f.Close()
}

// handshake makes one full handshake for name and checks its staple:
// it parses, is Good, is about the served certificate and verifies
// against the CA. It reports (staple ok, wrong staple, error).
func (s *setup) handshake(name string) (bool, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	raw, err := d.Dial("tcp", s.srv.Addr().String())
	if err != nil {
		return false, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(60 * time.Second))
	c := tls.Client(raw, &tls.Config{ServerName: name, RootCAs: s.pool, SessionTicketsDisabled: true})
	if err := c.Handshake(); err != nil {
		return false, err
	}
	cs := c.ConnectionState()
	if cs.DidResume {
		return false, errors.New("resumed: not a full handshake")
	}
	served := cs.PeerCertificates[0]
	want := s.leaves[name]
	if !served.Equal(want.Cert) {
		return true, fmt.Errorf("served %v for %s", served.Subject, name)
	}
	if len(cs.OCSPResponse) == 0 {
		return true, errors.New("no staple")
	}
	resp, err := ocsp.ParseResponseForCert(cs.OCSPResponse, served, s.ca.Cert)
	switch {
	case err != nil:
		return true, fmt.Errorf("staple for %s: %v", name, err)
	case resp.Status != ocsp.Good:
		return true, fmt.Errorf("staple status %d", resp.Status)
	case resp.SerialNumber.Cmp(served.SerialNumber) != 0:
		return true, fmt.Errorf("staple for serial %X on %X", resp.SerialNumber, served.SerialNumber)
	}
	return false, nil
}

// run makes total handshakes with conc workers; at is called once after
// atN handshakes (if atN > 0).
func (s *setup) run(total, conc int, atN int64, at func()) result {
	var next, done, errs, good, wrong atomic.Int64
	var mu sync.Mutex
	var first []error
	var once sync.Once
	names := []string{"a.load.test", "b.load.test"}
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				bad, err := s.handshake(names[i%2])
				switch {
				case err != nil && bad:
					wrong.Add(1)
					errs.Add(1)
				case err != nil:
					errs.Add(1)
				default:
					good.Add(1)
				}
				if err != nil {
					mu.Lock()
					if len(first) < 5 {
						first = append(first, err)
					}
					mu.Unlock()
				}
				if d := done.Add(1); atN > 0 && d == atN {
					once.Do(at)
				}
			}
		})
	}
	wg.Wait()
	return result{n: done.Load(), errs: errs.Load(), good: good.Load(), wrong: wrong.Load(), firstErrs: first, elapsed: time.Since(start)}
}

// settle waits for the goroutine count to come back to at most base.
func settle(base int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func report(t *testing.T, name string, res result, requests int64, before, after int) {
	line := fmt.Sprintf("LOAD %s: %d full handshakes at concurrency %d in %v = %.0f handshakes/s; errors %d, staples checked Good %d, wrong staples %d, responder requests %d, goroutines before %d after %d, VmHWM %s",
		name, res.n, concurrency, res.elapsed.Round(time.Millisecond), float64(res.n)/res.elapsed.Seconds(),
		res.errs, res.good, res.wrong, requests, before, after, vmHWM())
	t.Log(line)
	fmt.Println(line)
	for _, err := range res.firstErrs {
		t.Errorf("handshake error: %v", err)
	}
}

// TestLoadHandshakes: 20,000 full handshakes at concurrency 256, every one
// stapled with the right, Good, verified response; one responder request
// per certificate (no refresh is due within the run: -nmin 10); goroutines
// back to the baseline afterwards.
func TestLoadHandshakes(t *testing.T) {
	requireLoad(t)
	s := newSetup(t)
	runtime.GC()
	before := runtime.NumGoroutine()
	s.start(t)
	res := s.run(handshakes, concurrency, 0, nil)
	requests := s.r.Dials()
	st := s.f.Stats()
	s.stop(t)
	after := settle(before)
	report(t, "responder up", res, requests, before, after)
	if res.n != handshakes || res.errs != 0 || res.wrong != 0 || res.good != handshakes {
		t.Errorf("want %d handshakes, all stapled Good, no errors", handshakes)
	}
	if requests != int64(len(s.leaves)) || st.Fetched != int64(len(s.leaves)) {
		t.Errorf("responder requests %d, fetched %d: want exactly one per certificate (%d)", requests, st.Fetched, len(s.leaves))
	}
	if after > before {
		t.Errorf("goroutines %d after, %d before", after, before)
	}
}

// TestLoadResponderKilledMidway: the same load, the responder killed after
// a quarter of the handshakes. The rest keep getting the cached staple:
// no errors, no unstapled handshake, no wrong staple.
func TestLoadResponderKilledMidway(t *testing.T) {
	requireLoad(t)
	s := newSetup(t)
	runtime.GC()
	before := runtime.NumGoroutine()
	s.start(t)
	var killedAt atomic.Int64
	res := s.run(handshakes, concurrency, handshakes/4, func() {
		s.r.Stop()
		killedAt.Store(s.r.Dials())
	})
	requests := s.r.Dials()
	s.stop(t)
	after := settle(before)
	report(t, "responder killed at 1/4", res, requests, before, after)
	if res.n != handshakes || res.errs != 0 || res.wrong != 0 || res.good != handshakes {
		t.Errorf("want %d handshakes, all stapled Good from the cache, no errors", handshakes)
	}
	if requests != int64(len(s.leaves)) || killedAt.Load() != requests {
		t.Errorf("responder requests %d (%d when killed): want one per certificate, none after", requests, killedAt.Load())
	}
	if after > before {
		t.Errorf("goroutines %d after, %d before", after, before)
	}
}
