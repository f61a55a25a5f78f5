package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

func ocspResponse(t *testing.T, thisUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"},
		NotBefore: thisUpdate.Add(-time.Hour), NotAfter: thisUpdate.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ca, _ := x509.ParseCertificate(der)
	resp, err := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(2),
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate}, key)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStapleStoreEdgeCases(t *testing.T) {
	m := miniredis.RunT(t)
	f, logs := miniFleet(t, m, Options{Prefix: "p:"})
	s := f.Store()
	ctx := context.Background()

	if _, err := s.Load(ctx, "k"); !errors.Is(err, ocspfetch.ErrCacheMiss) {
		t.Fatalf("Load of a missing key: %v, want ErrCacheMiss", err)
	}
	// Kept until the response's NextUpdate.
	m.SetTime(time.Now())
	der := ocspResponse(t, time.Now().Add(-time.Minute), time.Now().Add(2*time.Hour))
	if err := s.Store(ctx, "k", der, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ttl := m.TTL("p:ocsp:k"); ttl < 119*time.Minute || ttl > 2*time.Hour {
		t.Errorf("TTL %v, want about 2h (NextUpdate)", ttl)
	}
	if got, err := s.Load(ctx, "k"); err != nil || string(got) != string(der) {
		t.Fatalf("Load = %d bytes, %v", len(got), err)
	}
	// An expired response is not shared at all.
	if err := s.Store(ctx, "old", ocspResponse(t, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m.Exists("p:ocsp:old") {
		t.Error("an expired response was stored")
	}
	// A huge value under the key is a miss, read no further than the bound.
	m.Set("p:ocsp:k", strings.Repeat("x", maxStapleValue+100))
	if _, err := s.Load(ctx, "k"); !errors.Is(err, ocspfetch.ErrCacheMiss) {
		t.Errorf("Load of an oversized value: %v, want ErrCacheMiss", err)
	}
	if !strings.Contains(logs.String(), "value too large") {
		t.Errorf("oversized value not logged:\n%s", logs)
	}
	if err := s.Delete(ctx, "k"); err != nil || m.Exists("p:ocsp:k") {
		t.Errorf("Delete: %v", err)
	}
}

func TestStapleStoreLock(t *testing.T) {
	m := miniredis.RunT(t)
	f, _ := miniFleet(t, m, Options{})
	g, _ := miniFleet(t, m, Options{})
	ctx := context.Background()
	unlock, err := f.Store().Lock(ctx, "k", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Store().Lock(ctx, "k", 10*time.Second); !errors.Is(err, ocspfetch.ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if ttl := m.TTL("tlsemit:ocsp-lock:k"); ttl != 10*time.Second {
		t.Errorf("lock TTL %v", ttl)
	}
	// The lock lapses; another member takes it; the first member's late
	// unlock must not release the second's lock.
	m.FastForward(11 * time.Second)
	unlockG, err := g.Store().Lock(ctx, "k", 10*time.Second)
	if err != nil {
		t.Fatalf("Lock after the first lapsed: %v", err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if !m.Exists("tlsemit:ocsp-lock:k") {
		t.Fatal("a lapsed holder's unlock released another member's lock")
	}
	if err := unlockG(ctx); err != nil || m.Exists("tlsemit:ocsp-lock:k") {
		t.Fatalf("unlock by the holder: %v, lock still there: %v", err, m.Exists("tlsemit:ocsp-lock:k"))
	}
	// Redis down: Lock fails (not ErrLocked), so the Fetcher asks alone.
	m.Close()
	if _, err := f.Store().Lock(ctx, "k", time.Second); err == nil || errors.Is(err, ocspfetch.ErrLocked) {
		t.Errorf("Lock with Redis down: %v, want an error other than ErrLocked", err)
	}
}
