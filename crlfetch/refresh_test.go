package crlfetch

import (
	"errors"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestRefreshAlwaysBeforeNextUpdate: whatever the CRL's lifetime, and
// however late in it the CRL was got, the next fetch is planned after now
// and before nextUpdate, and no later than MaxRefreshInterval (+5 %
// jitter).
func TestRefreshAlwaysBeforeNextUpdate(t *testing.T) {
	ca := testpki.NewCA(t, "refresh CA")
	f, _ := newFetcher(t, Options{})
	now := time.Now().Truncate(time.Second)
	for _, life := range []time.Duration{2 * time.Second, time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour} {
		for _, gotAt := range []float64{0, 0.3, 0.5, 0.9, 0.99} {
			this := now.Add(-time.Duration(float64(life) * gotAt))
			c, err := crl.Load(crltest.Build(t, crltest.Spec{Issuer: ca, ThisUpdate: this, NextUpdate: this.Add(life)}), ca.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if !c.NextUpdate.After(now) {
				continue // expired as encoded (whole seconds): not refreshed, retried
			}
			for range 50 {
				at := f.refreshAt(c, now)
				limit := now.Add(DefaultMaxRefreshInterval * 105 / 100)
				if !at.After(now) || !at.Before(c.NextUpdate) || at.After(limit) {
					t.Fatalf("life %v got at %.2f: refresh at now+%v, nextUpdate now+%v", life, gotAt, at.Sub(now), c.NextUpdate.Sub(now))
				}
			}
		}
	}
}

// TestRefreshSwapsInNewCRL: at the planned time the CRL is fetched again
// and a newer one, revoking another certificate, is used from then on.
func TestRefreshSwapsInNewCRL(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	m.publish(t, testpki.CRLOptions{Number: big.NewInt(1)})
	f, rec := newFetcher(t, Options{Now: clk.Now})
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
	m.publish(t, testpki.CRLOptions{Number: big.NewInt(2), ThisUpdate: clk.Now().Truncate(time.Second), Revoked: []*big.Int{m.good.Cert.SerialNumber}})
	next := status(t, f, m.host.URL+"/inter.crl").NextFetch
	clk.Advance(next.Sub(clk.Now()) + time.Second)
	f.pokeAll()
	rec.waitFrom(t, EventFetched, m.host.URL+"/inter.crl", 2)
	if err := m.check(f, m.good); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the refresh: %v", err)
	}
	if st := status(t, f, m.host.URL+"/inter.crl"); st.Number.Int64() != 2 || st.Entries != 2 {
		t.Fatalf("status %+v", st)
	}
}

// TestRetryBackoff: while the host is down, retries come after
// MinRetryDelay, doubling (each drawn from the upper half of its delay),
// capped at MaxRetryDelay and at half of what the held CRL has left.
func TestRetryBackoff(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	now := clk.Now().Truncate(time.Second)
	m.publish(t, testpki.CRLOptions{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(2 * time.Hour)})
	f, rec := newFetcher(t, Options{Now: clk.Now, MinRetryDelay: time.Second, MaxRetryDelay: time.Hour})
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	src := m.host.URL + "/inter.crl"
	clk.Advance(status(t, f, src).NextFetch.Sub(clk.Now()))
	for n := 1; n <= 14; n++ {
		f.pokeAll()
		rec.wait(t, EventFailed, n)
		st := status(t, f, src)
		delay := st.NextFetch.Sub(st.LastFetch)
		want := time.Second << (n - 1)
		if left := now.Add(2 * time.Hour).Sub(clk.Now()); want > left/2 {
			want = left / 2
		}
		if want > time.Hour {
			want = time.Hour
		}
		if delay < want/2-time.Millisecond || delay > want {
			t.Fatalf("retry %d after %v, want in [%v, %v]", n, delay, want/2, want)
		}
		if err := m.check(f, m.good); err != nil {
			t.Fatalf("retry %d: the held CRL is no longer used: %v", n, err)
		}
		clk.Advance(delay)
	}
}

// TestNeverWaitsOnceHeld: while a refresh hangs, checks answer from the
// CRL held at once.
func TestNeverWaitsOnceHeld(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	m.publish(t, testpki.CRLOptions{})
	f, _ := newFetcher(t, Options{Now: clk.Now, FirstWait: time.Hour})
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	clk.Advance(40 * time.Minute)
	f.pokeAll()
	<-entered
	done := make(chan error, 1)
	go func() { done <- m.check(f, m.bad) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRevoked) {
			t.Fatalf("during the refresh: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a check waited for the refresh")
	}
}

// TestOneFetchPerURL: concurrent first checks, and refreshes asked for
// while one runs, never make two requests for a URL at once.
func TestOneFetchPerURL(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	body := m.inter.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{m.bad.Cert.SerialNumber}})
	var inflight, most atomic.Int32
	gate := make(chan struct{})
	m.host.Handle("/inter.crl", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		<-gate
		w.Write(body)
	})
	clk := newClock()
	f, rec := newFetcher(t, Options{Now: clk.Now, FirstWait: time.Hour})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
				t.Error(err)
			}
		}()
	}
	for range 10 {
		clk.Advance(time.Minute)
		f.pokeAll()
	}
	close(gate)
	wg.Wait()
	rec.wait(t, EventFetched, 2)
	if most.Load() != 1 {
		t.Fatalf("%d requests at once for one URL", most.Load())
	}
}

// TestReplayRefused: an older CRL (lower number, or earlier thisUpdate
// without numbers) served after a newer one is refused; the newer one, and
// the revocations only it lists, stay.
func TestReplayRefused(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	now := clk.Now().Truncate(time.Second)
	m.publish(t, testpki.CRLOptions{Number: big.NewInt(5), ThisUpdate: now.Add(-time.Minute)})
	old := m.inter.CRL(t, testpki.CRLOptions{Number: big.NewInt(4), ThisUpdate: now.Add(-2 * time.Minute)})
	f, rec := newFetcher(t, Options{Now: clk.Now})
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	m.host.Set("/inter.crl", old) // revokes nobody
	clk.Advance(40 * time.Minute)
	f.pokeAll()
	ev := rec.wait(t, EventFailed, 1)
	if !errors.Is(ev.Err, ErrOlderCRL) {
		t.Fatalf("older CRL: %v", ev.Err)
	}
	if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatalf("the replay cleared a revoked client: %v", err)
	}
	if st := status(t, f, m.host.URL+"/inter.crl"); st.Number.Int64() != 5 || !errors.Is(st.LastError, ErrOlderCRL) {
		t.Fatalf("status %+v", st)
	}
	// Without numbers (v1 CRLs), by thisUpdate.
	clk = newClock()
	now = clk.Now().Truncate(time.Second)
	v1new := crltest.Build(t, crltest.Spec{Issuer: m.inter, V1: true, ThisUpdate: now, Entries: []crltest.Entry{{Serial: serialBytes(m.bad.Cert.SerialNumber)}}})
	v1old := crltest.Build(t, crltest.Spec{Issuer: m.inter, V1: true, ThisUpdate: now.Add(-time.Minute)})
	g, grec := newFetcher(t, Options{Now: clk.Now})
	m.host.Set("/inter.crl", v1new)
	if err := m.check(g, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	m.host.Set("/inter.crl", v1old)
	clk.Advance(40 * time.Minute)
	g.pokeAll()
	if ev := grec.wait(t, EventFailed, 1); !errors.Is(ev.Err, ErrOlderCRL) {
		t.Fatalf("older v1 CRL: %v", ev.Err)
	}
}

// TestConditionalGET: a refresh asks with the ETag; a 304 keeps the CRL
// held without downloading it again.
func TestConditionalGET(t *testing.T) {
	m := newMTLS(t)
	clk := newClock()
	m.publish(t, testpki.CRLOptions{})
	f, rec := newFetcher(t, Options{Now: clk.Now})
	if err := m.check(f, m.good); err != nil {
		t.Fatal(err)
	}
	src := m.host.URL + "/inter.crl"
	since := status(t, f, src).Since
	clk.Advance(40 * time.Minute)
	f.pokeAll()
	for m.host.Hits("/inter.crl") < 2 || status(t, f, src).NextFetch.Before(clk.Now()) {
		time.Sleep(time.Millisecond) // the refresh's end leaves no event: poll its effect
	}
	st := status(t, f, src)
	if rec.count(EventFetched) != 2 || !st.Since.Equal(since) || st.LastError != nil {
		t.Fatalf("after a 304: %d fetched, status %+v", rec.count(EventFetched), st)
	}
}
