package crlfetch

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestCloseEndsEverything: Close with a fetch hanging and a check waiting
// for it: the check returns, the fetch is cancelled, and no goroutine of
// the Fetcher is left.
func TestCloseEndsEverything(t *testing.T) {
	m := newMTLS(t)
	m.publishRoot(t)
	entered := make(chan struct{})
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	base := goleak.IgnoreCurrent()
	f, err := New(Options{FirstWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.check(f, m.good) }()
	<-entered
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a check passed without a CRL")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting check did not return at Close")
	}
	goleak.VerifyNone(t, base)
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestIdleDistributionPointForgotten: a distribution point no check has
// needed for a day is forgotten, CRL and goroutine; the next check brings
// it back.
func TestIdleDistributionPointForgotten(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{NextUpdate: time.Now().Add(72 * time.Hour)})
	clk := newClock()
	f, _ := newFetcher(t, Options{Now: clk.Now})
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
	clk.Advance(idleTimeout + time.Minute)
	f.pokeAll()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.CRLs()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not forgotten: %+v", f.CRLs())
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after being forgotten: %v", err)
	}
	if n := m.host.Hits("/inter.crl"); n < 2 {
		t.Fatalf("%d fetches", n)
	}
}

// TestDistributionPointBound: past maxURLSources distribution points, new
// ones are not followed, and their certificates are refused.
func TestDistributionPointBound(t *testing.T) {
	defer func(n int) { maxURLSources = n }(maxURLSources)
	maxURLSources = 2
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, _ := newFetcher(t, Options{})
	if err := m.check(f, m.good); err != nil { // inter.crl and root.crl
		t.Fatal(err)
	}
	third := m.inter.Issue(t, testpki.LeafOptions{CRLDistributionPoints: []string{m.host.URL + "/third.crl"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	m.host.Set("/third.crl", m.inter.CRL(t, testpki.CRLOptions{}))
	if err := f.Check(context.Background(), m.chain(third)); err != nil {
		// inter.crl, a complete CRL of the same issuer, covers it.
		t.Fatalf("covered by a CRL held: %v", err)
	}
	if n := m.host.Hits("/third.crl"); n != 0 || len(f.CRLs()) != 2 {
		t.Fatalf("followed a third distribution point: %d hits, %d sources", n, len(f.CRLs()))
	}
}

// TestIssuerLearnedFromChain: a URL whose CRL came from a CA the Fetcher
// did not know (ErrNoIssuer) is fetched again as soon as a chain shows
// that CA.
func TestIssuerLearnedFromChain(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	wrong := testpki.NewCA(t, "wrong CA")
	// A fake clock: the retry comes from the chain, not from the clock.
	clk := newClock()
	f, rec := newFetcher(t, Options{Now: clk.Now, Sources: []Source{{URL: m.host.URL + "/inter.crl", Issuer: wrong.Cert}}})
	if ev := rec.wait(t, EventFailed, 1); !errors.Is(ev.Err, ErrNoIssuer) {
		t.Fatalf("%v", ev.Err)
	}
	m.check(f, m.good) // shows the issuer: passes if the fetch it starts is quick enough
	rec.waitFrom(t, EventFetched, m.host.URL+"/inter.crl", 1)
	if err := m.check(f, m.good); err != nil {
		t.Fatalf("after the chain showed the issuer: %v", err)
	}
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the chain showed the issuer: %v", err)
	}
}

// TestCheckContext: a caller's context that ends while a check waits for
// a first CRL ends the check with the context's error, and is not counted
// as a refusal; the fetch goes on and serves the next check.
func TestCheckContext(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	gate := make(chan struct{})
	body := m.interCRL(t, testpki.CRLOptions{})
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Write(body)
	})
	f, rec := newFetcher(t, Options{FirstWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Check(ctx, m.chain(m.good)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	if rec.count(EventRefused) != 0 {
		t.Fatal("a cancelled check counted as a refusal")
	}
	close(gate)
	rec.waitFrom(t, EventFetched, m.host.URL+"/inter.crl", 1)
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
}

// TestWhyAnchor: the trust anchor's missing CRL is explained by the
// failure of the distribution point its subordinates named.
func TestWhyAnchor(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	m.host.Handle("/root.crl", down)
	f, _ := newFetcher(t, Options{})
	err := m.check(f, m.good)
	var e *crl.Error
	if !errors.As(err, &e) || e.Depth != 2 || !errors.Is(e.Cause, ErrHTTPStatus) {
		t.Fatalf("%v", err)
	}
}
