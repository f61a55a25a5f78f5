package crlfetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestFirstWaitBounded: a host that never answers delays the first check
// of its issuer by FirstWait, then the check fails closed with
// UNABLE_TO_GET_CRL (cause ErrFirstWait); the next checks do not wait,
// and Close ends the fetch still hanging.
func TestFirstWaitBounded(t *testing.T) {
	m := newMTLS(t)
	release := make(chan struct{})
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	m.publish(t, testpki.CRLOptions{}) // the root's CRL; /inter.crl keeps its handler
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	const wait = 300 * time.Millisecond
	f, _ := newFetcher(t, Options{FirstWait: wait})
	start := time.Now()
	err := m.check(f, m.good)
	took := time.Since(start)
	if !errors.Is(err, ErrNoCRL) || !errors.Is(err, ErrFirstWait) || crl.Code(err) != "UNABLE_TO_GET_CRL" {
		t.Fatalf("first check: %v", err)
	}
	if took < wait {
		t.Fatalf("returned after %v, before FirstWait", took)
	}
	// The second check does not start another fetch; it waits its own
	// FirstWait for the one in flight at most.
	if err := m.check(f, m.good); !errors.Is(err, ErrNoCRL) {
		t.Fatalf("second check: %v", err)
	}
	if n := m.host.Hits("/inter.crl"); n != 1 {
		t.Fatalf("%d requests for the CRL", n)
	}
}

// TestFailedFirstFetchStopsWaiting: once the first fetch has failed,
// checks answer at once (UNABLE_TO_GET_CRL, the failure as cause) instead
// of waiting FirstWait again, until a retry succeeds.
func TestFailedFirstFetchStopsWaiting(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	clk := newClock()
	f, rec := newFetcher(t, Options{FirstWait: time.Hour, Now: clk.Now})
	if err := m.check(f, m.good); !errors.Is(err, ErrNoCRL) || !errors.Is(err, ErrHTTPStatus) {
		t.Fatalf("first check: %v", err)
	}
	for range 3 {
		if err := m.check(f, m.good); !errors.Is(err, ErrHTTPStatus) {
			t.Fatalf("later check: %v", err)
		}
	}
	// The host comes back; the retry (within MinRetryDelay) brings the CRL.
	m.publish(t, testpki.CRLOptions{})
	clk.Advance(DefaultMinRetryDelay)
	f.pokeAll()
	rec.wait(t, EventFetched, 2)
	if err := m.check(f, m.good); err != nil {
		t.Fatalf("after the retry: %v", err)
	}
}

// TestExpiredCRL: a CRL held past its nextUpdate gives CRL_HAS_EXPIRED
// (EventExpired once), a listed certificate still CERT_REVOKED; Grace
// keeps it in use for that long.
func TestExpiredCRL(t *testing.T) {
	for _, grace := range []time.Duration{0, 30 * time.Minute} {
		m := newMTLS(t)
		clk := newClock()
		now := clk.Now().Truncate(time.Second)
		m.publish(t, testpki.CRLOptions{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(10 * time.Minute)})
		f, rec := newFetcher(t, Options{Now: clk.Now, Grace: grace})
		if err := m.check(f, m.good); err != nil {
			t.Fatal(err)
		}
		m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
		m.host.Handle("/root.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
		clk.Advance(10*time.Minute + time.Second + grace/2)
		if err := m.check(f, m.good); (err == nil) != (grace > 0) {
			t.Fatalf("grace %v, just past nextUpdate: %v", grace, err)
		}
		clk.Advance(grace)
		f.pokeAll()
		rec.wait(t, EventExpired, 2)
		rec.wait(t, EventFailed, 2) // the refreshes that failed
		err := m.check(f, m.good)
		if !errors.Is(err, ErrExpired) || crl.Code(err) != "CRL_HAS_EXPIRED" {
			t.Fatalf("grace %v, past it: %v", grace, err)
		}
		if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked client under an expired CRL: %v", err)
		}
		if st := status(t, f, m.host.URL+"/inter.crl"); !st.Expired || !st.Held || st.LastError == nil {
			t.Fatalf("status: %+v", st)
		}
	}
}

// TestFailOpen: with FailOpen, a chain whose CRL cannot be had passes
// (EventFailedOpen), a revoked one is still refused.
func TestFailOpen(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	m.host.Handle("/root.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	f, rec := newFetcher(t, Options{FailOpen: true})
	if err := m.check(f, m.good); err != nil {
		t.Fatalf("good client, root CRL unavailable: %v", err)
	}
	if ev, ok := rec.last(EventFailedOpen); !ok || ev.Code != "UNABLE_TO_GET_CRL" {
		t.Fatalf("event: %+v", ev)
	}
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked client with FailOpen: %v", err)
	}
	closed, _ := newFetcher(t, Options{})
	closed.Close()
	if err := m.check(closed, m.good); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed fetcher: %v", err)
	}
}

// TestClockSkew: a CRL whose thisUpdate is a little ahead of the
// server's clock (the CA's runs fast) is used within ClockSkew (5 min by
// default); with none (a negative ClockSkew) it is refused, and its
// issuer's clients get CRL_NOT_YET_VALID.
func TestClockSkew(t *testing.T) {
	for _, c := range []struct {
		skew time.Duration
		ok   bool
	}{{0, true}, {-1, false}} {
		m := newMTLS(t)
		now := time.Now().Truncate(time.Second)
		m.publish(t, testpki.CRLOptions{ThisUpdate: now.Add(2 * time.Minute), NextUpdate: now.Add(time.Hour)})
		f, _ := newFetcher(t, Options{ClockSkew: c.skew})
		err := m.check(f, m.good)
		if c.ok != (err == nil) || !c.ok && (!errors.Is(err, ErrNotYetValid) || crl.Code(err) != "CRL_NOT_YET_VALID") {
			t.Errorf("ClockSkew %v, thisUpdate 2 min ahead: %v", c.skew, err)
		}
	}
}

// TestLeafOnly: the client's certificate alone is checked; the root's CRL
// is neither needed nor fetched.
func TestLeafOnly(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	m.host.Handle("/root.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	f, _ := newFetcher(t, Options{LeafOnly: true})
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	if n := m.host.Hits("/root.crl"); n != 0 {
		t.Fatalf("root CRL fetched %d times", n)
	}
	all, _ := newFetcher(t, Options{})
	if err := m.check(all, m.good); !errors.Is(err, ErrNoCRL) || crl.Code(err) != "UNABLE_TO_GET_CRL" {
		t.Fatalf("every certificate: %v", err)
	}
}

// TestVerifyConnectionWithoutVerifiedChain: no client certificate passes
// (ClientAuth decides); a certificate crypto/tls did not verify is
// refused.
func TestVerifyConnectionWithoutVerifiedChain(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, _ := newFetcher(t, Options{})
	if err := f.VerifyConnection(tls.ConnectionState{}); err != nil {
		t.Fatalf("no client certificate: %v", err)
	}
	if err := f.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.good.Cert}}); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("unverified: %v", err)
	}
	cfg := m.serverConfig(f)
	cfg.ClientAuth = tls.RequireAnyClientCert
	if err := m.handshake(t, cfg, m.good, tls.VersionTLS13); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("RequireAnyClientCert: %v", err)
	}
	fo, _ := newFetcher(t, Options{FailOpen: true})
	if err := fo.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{m.good.Cert}}); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("unverified with FailOpen: %v", err)
	}
}

// TestNoDistributionPointNoSource: a certificate without distribution
// point whose issuer has no Source: UNABLE_TO_GET_CRL, saying so.
func TestNoDistributionPointNoSource(t *testing.T) {
	root := testpki.NewCA(t, "bare root")
	leaf := root.Issue(t, testpki.LeafOptions{})
	f, _ := newFetcher(t, Options{})
	err := f.Check(context.Background(), [][]*x509.Certificate{{leaf.Cert, root.Cert}})
	if !errors.Is(err, ErrNoCRL) || !bytes.Contains([]byte(err.Error()), []byte("no CRL distribution point")) {
		t.Fatalf("%v", err)
	}
}

// TestQuietWithoutLogger: nothing reaches the default logger; a Logger
// given receives the fetches and refusals.
func TestQuietWithoutLogger(t *testing.T) {
	var mu sync.Mutex
	var def, own bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(testenv.LockedWriter(&def, &mu), &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	f, _ := newFetcher(t, Options{})
	m.check(f, m.bad)
	g, _ := newFetcher(t, Options{Logger: slog.New(slog.NewTextHandler(testenv.LockedWriter(&own, &mu), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	m.check(g, m.bad)
	mu.Lock()
	defer mu.Unlock()
	if def.Len() != 0 {
		t.Fatalf("logged without a Logger: %s", def.String())
	}
	for _, want := range []string{"crlfetch: fetched", "crlfetch: refused", "CERT_REVOKED"} {
		if !bytes.Contains(own.Bytes(), []byte(want)) {
			t.Errorf("the Logger has no %q:\n%s", want, own.String())
		}
	}
}
