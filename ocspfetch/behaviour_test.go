package ocspfetch

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestSingleflight: 1,000 handshakes at once for a certificate nobody asked
// about before make exactly one responder request, and all are stapled.
func TestSingleflight(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	const n = 1000
	var f *Fetcher
	good := s.good(t)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		testenv.WaitFor(t, func() bool { return f.Stats().Misses == n }) // every caller waits on the fetch
		good(w, r)
	})
	f, _ = newFetcher(t, Options{Now: clk.Now, HandshakeBudget: 20 * time.Second})
	var wg sync.WaitGroup
	var mu sync.Mutex
	stapled := 0
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f.OCSPRequest(s.leaf.DER, s.ca.DER, func(err error, der []byte) {
				if err == nil && der != nil {
					mu.Lock()
					stapled++
					mu.Unlock()
				}
			})
		}()
	}
	close(start)
	wg.Wait()
	if got := s.requests.Load(); got != 1 {
		t.Fatalf("%d responder requests for %d concurrent cold handshakes, want exactly 1", got, n)
	}
	if stapled != n {
		t.Fatalf("%d of %d handshakes stapled", stapled, n)
	}
}

// TestBackoffThenExpiry: refreshes that keep failing are retried after
// delays that double from MinRetryDelay up to MaxRetryDelay, each drawn
// from its upper half; the cached Good answer is served until NextUpdate
// less the margin, and never after.
func TestBackoffThenExpiry(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	f, rec := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: testBudget, MaxRetryDelay: 8 * DefaultMinRetryDelay})
	good := request(t, f, s.leaf.DER, s.ca.DER)
	if good.der == nil {
		t.Fatal("no staple")
	}
	st, _ := f.Staple(context.Background(), s.leaf.DER, s.ca.DER)
	s.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	e := f.certs.get(s.leaf.DER)
	due := func() time.Time {
		f.sched.mu.Lock()
		defer f.sched.mu.Unlock()
		return e.due
	}
	clk.Advance(due().Sub(clk.Now()))
	for i, d := range []time.Duration{1, 2, 4, 8, 8, 8} {
		d *= DefaultMinRetryDelay
		if n := refreshNow(t, f, clk.Now()); n != 1 {
			t.Fatalf("retry %d: %d refreshes", i, n)
		}
		if got := due().Sub(clk.Now()); got < d/2 || got > d {
			t.Fatalf("retry %d: next in %v, want within [%v, %v]", i, got, d/2, d)
		}
		if res := request(t, f, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, good.der) {
			t.Fatalf("retry %d: cached Good not served", i)
		}
		clk.Advance(due().Sub(clk.Now()))
	}
	// Just before the end of service: still served.
	clk.Advance(st.ServeUntil.Sub(clk.Now()) - time.Second)
	if res := request(t, f, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, good.der) {
		t.Fatal("cached Good not served before its end of service")
	}
	if want := st.NextUpdate.Add(-DefaultClockSkew); !st.ServeUntil.Equal(want) {
		t.Fatalf("ServeUntil %v, want NextUpdate-skew %v", st.ServeUntil, want)
	}
	clk.Advance(2 * time.Second)
	res := request(t, f, s.leaf.DER, s.ca.DER)
	if res.der != nil {
		t.Fatal("stapled an answer past its end of service")
	}
	if ev, ok := rec.find(EventExpired); !ok || !errors.Is(ev.Err, ErrExpired) {
		t.Fatalf("expiry not reported: %v", rec.kinds())
	}
	// The cap, with the default options, after many failures.
	g, _ := newFetcher(t, Options{})
	if d := g.retryDelay(1000); d < DefaultMaxRetryDelay/2 || d > DefaultMaxRetryDelay {
		t.Fatalf("delay after many failures %v, want within [%v, %v]", d, DefaultMaxRetryDelay/2, DefaultMaxRetryDelay)
	}
}

// TestDirStore: a new Fetcher over the same directory serves the stored
// staple without asking the responder; files are 0600; a corrupt or expired
// file is ignored and replaced.
func TestDirStore(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	dir := filepath.Join(t.TempDir(), "staples")
	open := func() (*Fetcher, *recorder) { return dirFetcher(t, dir, Options{Now: clk.Now}) }
	f1, _ := open()
	first := request(t, f1, s.leaf.DER, s.ca.DER)
	if first.der == nil {
		t.Fatal("no staple")
	}
	f1.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ocsp"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if stray, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(stray) != 0 {
		t.Fatalf("temporary files left: %v", stray)
	}

	f2, rec2 := open()
	if res := request(t, f2, s.leaf.DER, s.ca.DER); !bytes.Equal(res.der, first.der) {
		t.Fatal("restart did not serve the stored staple")
	}
	if s.requests.Load() != 1 || f2.Stats().Loaded != 1 {
		t.Fatalf("restart asked the responder: %d requests, stats %+v", s.requests.Load(), f2.Stats())
	}
	if _, ok := rec2.find(EventLoaded); !ok {
		t.Fatalf("no loaded event: %v", rec2.kinds())
	}
	f2.Close()

	if err := os.WriteFile(files[0], []byte("not an OCSP response"), 0o600); err != nil {
		t.Fatal(err)
	}
	f3, _ := open()
	if res := request(t, f3, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatal("corrupt file: no staple")
	}
	if s.requests.Load() != 2 {
		t.Fatalf("corrupt file not replaced by a fetch: %d requests", s.requests.Load())
	}
	if b, _ := os.ReadFile(files[0]); !bytes.Equal(b, mustParseOK(t, b, s)) {
		t.Fatal("corrupt file not replaced")
	}
	f3.Close()

	clk.Advance(2 * time.Hour) // the stored answer is now expired
	f4, _ := open()
	res := request(t, f4, s.leaf.DER, s.ca.DER)
	if res.der == nil || s.requests.Load() != 3 {
		t.Fatalf("expired file: %d bytes, %d requests", len(res.der), s.requests.Load())
	}
	if r, err := ocsp.ParseResponse(res.der, nil); err != nil || !clk.Now().Before(r.NextUpdate) {
		t.Fatalf("stapled an expired answer: %v", err)
	}
}

func mustParseOK(t *testing.T, b []byte, s *scripted) []byte {
	t.Helper()
	if _, err := ocsp.ParseResponseForCert(b, s.leaf.Cert, s.ca.Cert); err != nil {
		t.Fatalf("stored file: %v", err)
	}
	return b
}

// TestMemoryStoreShared: two Fetchers sharing a Store ask the responder
// once.
func TestMemoryStoreShared(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := NewMemoryStore()
	f1, _ := newFetcher(t, Options{Now: clk.Now, Store: store})
	f2, _ := newFetcher(t, Options{Now: clk.Now, Store: store})
	a := request(t, f1, s.leaf.DER, s.ca.DER)
	settle(t, f1) // saved to the Store after the handshake got its staple
	b := request(t, f2, s.leaf.DER, s.ca.DER)
	if a.der == nil || !bytes.Equal(a.der, b.der) || s.requests.Load() != 1 {
		t.Fatalf("%d requests", s.requests.Load())
	}
	if _, err := store.Load(context.Background(), "nope"); !errors.Is(err, ErrCacheMiss) {
		t.Fatal(err)
	}
}

// TestRenewedCertificate: a renewed certificate (new serial, same name and
// key usage) never gets its predecessor's staple.
func TestRenewedCertificate(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	old := s.leaf
	renewed := s.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{s.srv.URL}})
	// The responder answers for whichever certificate it is asked about.
	s.set(func(w http.ResponseWriter, r *http.Request) {
		req := decodeRequest(t, r)
		leaf := old
		if req.SerialNumber.Cmp(renewed.Cert.SerialNumber) == 0 {
			leaf = renewed
		}
		writeOCSP(w, s.ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute)}))
	})
	f, _ := newFetcher(t, Options{Now: clk.Now})
	a := request(t, f, old.DER, s.ca.DER)
	b := request(t, f, renewed.DER, s.ca.DER)
	if _, err := ocsp.ParseResponseForCert(b.der, renewed.Cert, s.ca.Cert); err != nil {
		t.Fatalf("renewed certificate's staple: %v", err)
	}
	if bytes.Equal(a.der, b.der) || s.requests.Load() != 2 {
		t.Fatal("renewed certificate got the old staple")
	}
}

// decodeRequest reads an OCSP request sent by GET or POST.
func decodeRequest(t testing.TB, r *http.Request) *ocsp.Request {
	var der []byte
	if r.Method == http.MethodGet {
		p := r.URL.EscapedPath()
		enc, err := url.PathUnescape(p[strings.LastIndex(p, "/")+1:])
		if err == nil {
			der, err = base64.StdEncoding.DecodeString(enc)
		}
		if err != nil {
			t.Errorf("GET path %q: %v", r.URL.EscapedPath(), err)
		}
	} else {
		if ct := r.Header.Get("Content-Type"); ct != "application/ocsp-request" {
			t.Errorf("POST Content-Type %q", ct)
		}
		der, _ = io.ReadAll(r.Body)
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		t.Errorf("request: %v", err)
		return &ocsp.Request{SerialNumber: big.NewInt(0)}
	}
	return req
}

// TestGETUnder255ElsePOST: RFC 5019's rule, with SHA-1 and SHA-256 CertIDs
// and long serials.
func TestGETUnder255ElsePOST(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	var mu sync.Mutex
	var got []string
	var hashes []crypto.Hash
	var leaf *testpki.Leaf
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := decodeRequest(t, r)
		mu.Lock()
		got = append(got, r.Method)
		hashes = append(hashes, req.HashAlgorithm)
		mu.Unlock()
		writeOCSP(w, ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{IssuerHash: req.HashAlgorithm}))
	}))
	defer srv.Close()
	long := new(big.Int).Lsh(big.NewInt(1), 150) // a 20-byte serial, as CAs use
	for _, tc := range []struct {
		hash   crypto.Hash
		serial *big.Int
	}{{crypto.SHA1, nil}, {crypto.SHA256, nil}, {crypto.SHA512, long}} {
		leaf = ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL + "/ocsp/"}, Serial: tc.serial})
		f, rec := newFetcher(t, Options{CertIDHash: tc.hash})
		if res := request(t, f, leaf.DER, ca.DER); res.der == nil {
			t.Fatalf("%v: no staple: %v", tc.hash, rec.kinds())
		}
		reqDER, _ := ocsp.CreateRequest(leaf.Cert, ca.Cert, &ocsp.RequestOptions{Hash: tc.hash})
		want := http.MethodPost
		if len(url.QueryEscape(base64.StdEncoding.EncodeToString(reqDER))) < 255 {
			want = http.MethodGet
		}
		mu.Lock()
		if last := got[len(got)-1]; last != want || hashes[len(hashes)-1] != tc.hash {
			t.Fatalf("%v: method %s hash %v, want %s", tc.hash, last, hashes[len(hashes)-1], want)
		}
		mu.Unlock()
	}
	// A request too long for GET goes by POST, body intact.
	var post []byte
	var method string
	raw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method = r.Method
		post, _ = io.ReadAll(r.Body)
	}))
	defer raw.Close()
	f, _ := newFetcher(t, Options{})
	big := bytes.Repeat([]byte{0x30}, 200)
	if _, err := f.postOCSP(context.Background(), raw.URL, big); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || !bytes.Equal(post, big) {
		t.Fatalf("long request sent by %s", method)
	}
}

// TestCAIssuers: without an issuer the Fetcher fetches it once from the
// caIssuers URL; without one it gives up cleanly.
func TestCAIssuers(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	var issuerFetches int
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/ca.crt", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		issuerFetches++
		mu.Unlock()
		w.Write(testpki.CertPEM(s.ca.DER))
	})
	aia := httptest.NewServer(mux)
	defer aia.Close()
	leaf := s.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{s.srv.URL}, IssuingCertificateURL: []string{aia.URL + "/ca.crt"}})
	s.leaf = leaf
	f, rec := newFetcher(t, Options{Now: clk.Now})
	res := request(t, f, leaf.DER, nil)
	if res.der == nil {
		t.Fatalf("no staple: %v", rec.kinds())
	}
	clk.Advance(35 * time.Minute)
	refreshNow(t, f, clk.Now())
	if issuerFetches != 1 || s.requests.Load() != 2 {
		t.Fatalf("issuer fetched %d times, responder %d", issuerFetches, s.requests.Load())
	}

	bare := s.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{s.srv.URL}})
	g, rec := newFetcher(t, Options{Now: clk.Now})
	if res := request(t, g, bare.DER, nil); res.der != nil {
		t.Fatal("stapled without an issuer")
	}
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrNoIssuer) {
		t.Fatalf("%v", rec.kinds())
	}
	// An issuer that did not sign the certificate is not adopted.
	if res := request(t, g, bare.DER, testpki.NewCA(t, "x").DER); res.der != nil {
		t.Fatal("stapled with a wrong issuer")
	}
}

// TestMustStapleMissing: a Must-Staple certificate whose responder is down
// is reported loudly.
func TestMustStapleMissing(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer srv.Close()
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL}, MustStaple: true})
	var logs bytes.Buffer
	var logMu sync.Mutex
	f, rec := newFetcher(t, Options{Logger: newBufLogger(&logs, &logMu)})
	request(t, f, leaf.DER, ca.DER)
	if ev, ok := rec.find(EventMustStapleMissing); !ok || !errors.Is(ev.Err, ErrHTTPStatus) || f.Stats().MustStapleMissing == 0 {
		t.Fatalf("must-staple not reported: %v", rec.kinds())
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "Must-Staple") {
		t.Fatalf("not logged at error level: %s", logs.String())
	}
}

// TestFailClosed: with FailClosed a failure fails the handshake with the
// reason; by default it never does.
func TestFailClosed(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer srv.Close()
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL}})
	f, _ := newFetcher(t, Options{FailClosed: true})
	for i := 0; i < 2; i++ { // cold, then from the backoff state
		if res := request(t, f, leaf.DER, ca.DER); !errors.Is(res.err, ErrHTTPStatus) || res.der != nil {
			t.Fatalf("FailClosed call %d: %v", i, res.err)
		}
	}
	g, _ := newFetcher(t, Options{})
	if res := request(t, g, leaf.DER, ca.DER); res.err != nil {
		t.Fatalf("fail open: %v", res.err)
	}
}

// TestRefuseInternalAddresses: the option refuses loopback responders
// before any byte is sent, with the default and with a custom client.
func TestRefuseInternalAddresses(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	for _, c := range []*http.Client{nil, {}} {
		f, rec := newFetcher(t, Options{Now: clk.Now, RefuseInternalAddresses: true, HTTPClient: c})
		if res := request(t, f, s.leaf.DER, s.ca.DER); res.der != nil {
			t.Fatal("stapled from a refused address")
		}
		if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrRefusedAddress) {
			t.Fatalf("%v", rec.kinds())
		}
	}
	if s.requests.Load() != 0 {
		t.Fatal("request reached the refused responder")
	}
	// The default client's dialer checks every address it connects to,
	// so names that resolve inside are caught too (the URL check is
	// bypassed here to reach it).
	f, _ := newFetcher(t, Options{RefuseInternalAddresses: true})
	resp, err := f.client.Get(s.srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrRefusedAddress) || s.requests.Load() != 0 {
		t.Fatalf("dialer let a loopback address through: %v", err)
	}
}

// TestClose: Close cancels a fetch in flight and returns; afterwards
// nothing is stapled and Staple fails with ErrClosed. goleak (TestMain)
// checks that no goroutine is left.
func TestClose(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	s.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f, _ := newFetcher(t, Options{Now: clk.Now, HandshakeBudget: 50 * time.Millisecond})
	request(t, f, s.leaf.DER, s.ca.DER) // leaves a fetch in flight
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der != nil || res.err != nil {
		t.Fatal("answer after Close")
	}
	if _, err := f.Staple(context.Background(), s.leaf.DER, s.ca.DER); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
