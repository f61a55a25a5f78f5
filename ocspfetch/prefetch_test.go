package ocspfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestPrefetch: Prefetch warms every certificate it is given, reports per
// certificate what it got, in order, returns when its context ends, and
// the first handshake of a warmed certificate is a cache hit.
func TestPrefetch(t *testing.T) {
	clk := newClock()
	good := newScripted(t, clk)
	slow := newScripted(t, clk)
	slow.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	noResponder := good.ca.Issue(t, testpki.LeafOptions{})
	f, _ := newFetcher(t, Options{Now: clk.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := f.Prefetch(ctx,
		good.leaf.TLSCertificate(true),
		noResponder.TLSCertificate(true),
		slow.leaf.TLSCertificate(true),
		tls.Certificate{},
	)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("Prefetch returned after %v, its context ended after 500ms", elapsed)
	}
	if len(res) != 4 {
		t.Fatalf("%d results for 4 certificates", len(res))
	}
	if res[0].Err != nil || res[0].Staple == nil || res[0].Staple.Key == "" {
		t.Fatalf("good certificate: %+v", res[0])
	}
	if res[1].Staple != nil || !errors.Is(res[1].Err, ErrNoResponder) {
		t.Fatalf("certificate without a responder: %+v", res[1])
	}
	if res[2].Staple != nil || !errors.Is(res[2].Err, context.DeadlineExceeded) {
		t.Fatalf("certificate whose responder hangs: %+v", res[2])
	}
	if !errors.Is(res[3].Err, ErrBadCertificate) {
		t.Fatalf("empty tls.Certificate: %+v", res[3])
	}
	if r := request(t, f, good.leaf.DER, good.ca.DER); r.der == nil || f.Stats().Hits != 1 || f.Stats().Misses != 0 {
		t.Fatalf("the first handshake after Prefetch: %d bytes, stats %+v", len(r.der), f.Stats())
	}
	if n := good.requests.Load(); n != 1 {
		t.Fatalf("%d responder requests, want 1", n)
	}

	// A Must-Staple certificate is stapled from its first handshake.
	ms := newScripted(t, clk)
	ms.leaf = ms.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{ms.srv.URL}, MustStaple: true})
	g, rec := newFetcher(t, Options{Now: clk.Now})
	if res := g.Prefetch(context.Background(), ms.leaf.TLSCertificate(true)); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if r := request(t, g, ms.leaf.DER, ms.ca.DER); r.der == nil {
		t.Fatal("Must-Staple certificate unstapled on its first handshake")
	}
	if _, ok := rec.find(EventMustStapleMissing); ok {
		t.Fatalf("must-staple-missing reported: %v", rec.kinds())
	}
}
