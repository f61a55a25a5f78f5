package e2e_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
)

// routes is an http.RoundTripper sending each request to the transport of
// the responder whose host:port it names.
type routes map[string]http.RoundTripper

func (r routes) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt, ok := r[req.URL.Host]; ok {
		return rt.RoundTrip(req)
	}
	return nil, fmt.Errorf("no route to %s", req.URL.Host)
}

func hostOf(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestNoStapleCrossesCertificates: two SNI names, two certificates from
// two CAs with the same serial number, two real responders (one CA-signed,
// one through a delegated signer), one Fetcher, one server. Concurrent
// handshakes for both names, cold and warm: every connection's staple is
// about the certificate it was served (serial) and verifies against that
// certificate's own issuer.
func TestNoStapleCrossesCertificates(t *testing.T) {
	caA := testpki.NewCA(t, "e2e root A")
	caB := testpki.NewCA(t, "e2e root B")
	rA := ocsptest.Start(t, caA, ocsptest.Options{NMin: 5})
	optsB := ocsptest.Options{NMin: 5, Signer: caB.OCSPSigner(t, true)}
	if rA.Isolated {
		optsB.Port = 8889 // namespaces are private, but the URLs must differ
	}
	rB := ocsptest.Start(t, caB, optsB)
	serial := big.NewInt(0x7e57ab1e)
	leafA := caA.Issue(t, testpki.LeafOptions{DNSNames: []string{"a.e2e.test"}, OCSPServer: []string{rA.URL}, Serial: serial})
	leafB := caB.Issue(t, testpki.LeafOptions{DNSNames: []string{"b.e2e.test"}, OCSPServer: []string{rB.URL}, Serial: serial})
	rA.Add(leafA)
	rB.Add(leafB)

	client := &http.Client{Timeout: 10 * time.Second, Transport: routes{
		hostOf(t, rA.URL): rA.Client.Transport,
		hostOf(t, rB.URL): rB.Client.Transport,
	}}
	f, rec := newFetcher(t, ocspfetch.Options{HTTPClient: client})
	s := newStapling(t, f, leafA, map[string]*testpki.Leaf{"a.e2e.test": leafA, "b.e2e.test": leafB})
	cas := map[string]*testpki.CA{caA.Name: caA, caB.Name: caB}
	pool := x509.NewCertPool()
	pool.AddCert(caA.Cert)
	pool.AddCert(caB.Cert)

	for round := 0; round < 2; round++ { // cold (shared fetches), then from the cache
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			host := []string{"a.e2e.test", "b.e2e.test"}[i%2]
			wg.Go(func() {
				c, err := dialErr(s.port, host, pool)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				cs := c.ConnectionState()
				if got := cs.PeerCertificates[0].DNSNames[0]; got != host {
					errs <- fmt.Errorf("asked for %s, served %s", host, got)
					return
				}
				if err := stapleError(cs, cas); err != nil {
					errs <- fmt.Errorf("%s: %w", host, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
	if t.Failed() {
		t.Logf("fetcher events: %s", rec)
	}
	if a, b := rA.Dials(), rB.Dials(); a != 1 || b != 1 {
		t.Errorf("responder requests A=%d B=%d, want one each", a, b)
	}
}

// TestSwappedAnswersNotStapled: a scripted responder answers with a valid,
// well-signed response about another certificate: B's answer for A (other
// CA, other serial), A's answer for C (same CA, other serial), and B's
// answer for D (other CA, same serial as B). None of them is stapled, on
// the cold handshake or later ones, and each is reported as
// ErrWrongCertificate; B, answered correctly, is stapled.
func TestSwappedAnswersNotStapled(t *testing.T) {
	caA := testpki.NewCA(t, "e2e swap root A")
	caB := testpki.NewCA(t, "e2e swap root B")
	var mu sync.Mutex
	answers := map[string][]byte{} // path prefix → response
	asked := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		for prefix, der := range answers {
			if strings.HasPrefix(r.URL.Path, prefix) {
				asked[prefix]++
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(der)
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	issue := func(ca *testpki.CA, name string, serial *big.Int) *testpki.Leaf {
		return ca.Issue(t, testpki.LeafOptions{DNSNames: []string{name + ".e2e.test"},
			OCSPServer: []string{srv.URL + "/" + name + "/"}, Serial: serial})
	}
	leafA := issue(caA, "a", nil)
	leafB := issue(caB, "b", nil)
	leafC := issue(caA, "c", nil)
	leafD := issue(caA, "d", leafB.Cert.SerialNumber)
	respA := caA.OCSPResponse(t, leafA.Cert, testpki.ResponseOptions{Status: ocsp.Good})
	respB := caB.OCSPResponse(t, leafB.Cert, testpki.ResponseOptions{Status: ocsp.Good})
	mu.Lock()
	answers["/a/"], answers["/b/"], answers["/c/"], answers["/d/"] = respB, respB, respA, respB
	mu.Unlock()

	f, rec := newFetcher(t, ocspfetch.Options{})
	s := newStapling(t, f, leafB, map[string]*testpki.Leaf{
		"a.e2e.test": leafA, "b.e2e.test": leafB, "c.e2e.test": leafC, "d.e2e.test": leafD})
	cas := map[string]*testpki.CA{caA.Name: caA, caB.Name: caB}
	pool := x509.NewCertPool()
	pool.AddCert(caA.Cert)
	pool.AddCert(caB.Cert)

	for round := 0; round < 2; round++ {
		for _, l := range []*testpki.Leaf{leafA, leafB, leafC, leafD} {
			host := l.Cert.DNSNames[0]
			c := dial(t, s.port, host, pool)
			cs := c.ConnectionState()
			if !cs.PeerCertificates[0].Equal(l.Cert) {
				t.Fatalf("%s: served another certificate", host)
			}
			if l == leafB {
				if err := stapleError(cs, cas); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				continue
			}
			if len(cs.OCSPResponse) != 0 {
				what := "unparsable"
				if r, err := ocsp.ParseResponse(cs.OCSPResponse, nil); err == nil {
					what = fmt.Sprintf("serial %X", r.SerialNumber)
				}
				t.Errorf("round %d: %s (serial %X) stapled a response for %s; same bytes as B's: %v",
					round, host, l.Cert.SerialNumber, what, bytes.Equal(cs.OCSPResponse, respB))
			}
		}
	}
	for _, l := range []*testpki.Leaf{leafA, leafC, leafD} {
		ev, ok := rec.find(ocspfetch.EventFailed, l)
		if !ok || !errors.Is(ev.Err, ocspfetch.ErrWrongCertificate) {
			t.Errorf("%s: swapped answer not reported as ErrWrongCertificate (event %+v): %s", l.Cert.DNSNames[0], ev, rec)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/a/", "/b/", "/c/", "/d/"} {
		if asked[p] == 0 {
			t.Errorf("responder never asked about %s: the test proves nothing for it", p)
		}
	}
}
