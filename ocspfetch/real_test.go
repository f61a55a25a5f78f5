package ocspfetch

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// realPKI starts openssl ocsp for a fresh CA and issues leaf certificates
// that name it.
type realPKI struct {
	ca *testpki.CA
	r  *ocsptest.Responder
}

func startReal(t *testing.T, delegated bool, nmin int) *realPKI {
	t.Helper()
	ca := testpki.NewCA(t, "real CA")
	var signer *testpki.Leaf
	if delegated {
		signer = ca.OCSPSigner(t, true)
	}
	r := ocsptest.Start(t, ca, ocsptest.Options{Signer: signer, NMin: nmin})
	return &realPKI{ca: ca, r: r}
}

func (p *realPKI) leaf(t *testing.T, listed bool) *testpki.Leaf {
	l := p.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{p.r.URL}})
	if listed {
		p.r.Add(l)
	}
	return l
}

func parseFor(t *testing.T, der []byte, l *testpki.Leaf) *ocsp.Response {
	t.Helper()
	resp, err := ocsp.ParseResponseForCert(der, l.Cert, l.Issuer.Cert)
	if err != nil {
		t.Fatalf("stapled bytes do not parse for the certificate: %v", err)
	}
	return resp
}

func TestRealResponderGood(t *testing.T) {
	for _, delegated := range []bool{true, false} {
		name := map[bool]string{true: "delegated signer", false: "CA-signed"}[delegated]
		t.Run(name, func(t *testing.T) {
			p := startReal(t, delegated, 5)
			leaf := p.leaf(t, true)
			f, rec := newFetcher(t, Options{HTTPClient: p.r.Client})
			res := request(t, f, leaf.DER, leaf.Issuer.DER)
			if res.err != nil || res.der == nil {
				t.Fatalf("cold request: err %v, staple %d bytes; events %v\n%s", res.err, len(res.der), rec.kinds(), p.r.Output())
			}
			resp := parseFor(t, res.der, leaf)
			if resp.Status != ocsp.Good {
				t.Fatalf("status %d", resp.Status)
			}
			if delegated != (resp.Certificate != nil && !resp.Certificate.Equal(p.ca.Cert)) {
				t.Fatalf("delegated=%v but embedded signer %v", delegated, resp.Certificate)
			}
			// Second handshake: from memory, no request.
			if again := request(t, f, leaf.DER, leaf.Issuer.DER); string(again.der) != string(res.der) {
				t.Fatal("second request got a different staple")
			}
			if n := p.r.Dials(); n != 1 {
				t.Fatalf("responder asked %d times, want 1", n)
			}
			if s := f.Stats(); s.Hits != 1 || s.Fetched != 1 || s.Requests != 1 {
				t.Fatalf("stats %+v", s)
			}
			if _, ok := rec.find(EventFetched); !ok {
				t.Fatalf("no fetched event: %v", rec.kinds())
			}
		})
	}
}

func TestRealResponderUnknown(t *testing.T) {
	p := startReal(t, true, 5)
	leaf := p.leaf(t, false) // not in the index
	f, rec := newFetcher(t, Options{HTTPClient: p.r.Client, FailClosed: true})
	st, err := f.Staple(context.Background(), leaf.DER, leaf.Issuer.DER)
	if !errors.Is(err, ErrUnknownStatus) || st == nil || st.Status != ocsp.Unknown {
		t.Fatalf("Staple: %v, %+v", err, st)
	}
	res := request(t, f, leaf.DER, leaf.Issuer.DER)
	if res.der != nil || !errors.Is(res.err, ErrUnknownStatus) {
		t.Fatalf("unknown certificate: err %v, %d bytes stapled", res.err, len(res.der))
	}
	if _, ok := rec.find(EventUnknown); !ok || f.Stats().Unknown != 1 {
		t.Fatalf("unknown not reported: %v %+v", rec.kinds(), f.Stats())
	}
}

func TestRealResponderRevoked(t *testing.T) {
	p := startReal(t, false, 5)
	leaf := p.leaf(t, true)
	p.r.Revoke(leaf)

	f, rec := newFetcher(t, Options{HTTPClient: p.r.Client})
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); res.der != nil || res.err != nil {
		t.Fatalf("revoked, default options: err %v, %d bytes stapled", res.err, len(res.der))
	}
	if ev, ok := rec.find(EventRevoked); !ok || !errors.Is(ev.Err, ErrRevoked) {
		t.Fatalf("revocation not reported: %v", rec.kinds())
	}

	g, _ := newFetcher(t, Options{HTTPClient: p.r.Client, StapleRevoked: true})
	res := request(t, g, leaf.DER, leaf.Issuer.DER)
	if res.der == nil || parseFor(t, res.der, leaf).Status != ocsp.Revoked {
		t.Fatalf("StapleRevoked: want the revoked response stapled, got %d bytes (err %v)", len(res.der), res.err)
	}
}

// TestRealRevokeThenRefresh: Good is stapled; the CA revokes; the refresh
// at the midpoint brings Revoked and the Good staple stops.
func TestRealRevokeThenRefresh(t *testing.T) {
	p := startReal(t, true, 5)
	leaf := p.leaf(t, true)
	clk := newClock()
	f, rec := newFetcher(t, Options{HTTPClient: p.r.Client, Now: clk.Now})
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); parseFor(t, res.der, leaf).Status != ocsp.Good {
		t.Fatal("not good at first")
	}
	p.r.Revoke(leaf)
	// Before the midpoint nothing is due.
	if n := refreshNow(t, f, clk.Now()); n != 0 {
		t.Fatalf("%d refreshes before the midpoint", n)
	}
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); res.der == nil {
		t.Fatal("cached Good dropped before any refresh")
	}
	clk.Advance(3 * time.Minute) // -nmin 5: midpoint 2.5 min ± 15 s
	if n := refreshNow(t, f, clk.Now()); n != 1 {
		t.Fatalf("%d refreshes after the midpoint, want 1", n)
	}
	if res := request(t, f, leaf.DER, leaf.Issuer.DER); res.der != nil {
		t.Fatalf("still stapling after the refresh said Revoked (status %d)", parseFor(t, res.der, leaf).Status)
	}
	if _, ok := rec.find(EventRevoked); !ok {
		t.Fatalf("no revoked event: %v", rec.kinds())
	}
	if p.r.Dials() != 2 {
		t.Fatalf("responder asked %d times, want 2", p.r.Dials())
	}
}

// TestRealResponderNoNextUpdate: without -nmin openssl omits NextUpdate;
// the staple lives NoNextUpdateLifetime.
func TestRealResponderNoNextUpdate(t *testing.T) {
	p := startReal(t, false, 0)
	leaf := p.leaf(t, true)
	f, _ := newFetcher(t, Options{HTTPClient: p.r.Client})
	st, err := f.Staple(context.Background(), leaf.DER, leaf.Issuer.DER)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.NextUpdate.Sub(st.ThisUpdate); got != NoNextUpdateLifetime {
		t.Fatalf("effective lifetime %v, want %v", got, NoNextUpdateLifetime)
	}
}
