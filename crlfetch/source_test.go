package crlfetch

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// bare is a CA whose certificates name no distribution point.
type bare struct {
	ca        *testpki.CA
	good, bad *testpki.Leaf
}

func newBare(t *testing.T) *bare {
	ca := testpki.NewCA(t, "bare CA")
	return &bare{ca: ca, good: ca.Issue(t, testpki.LeafOptions{}), bad: ca.Issue(t, testpki.LeafOptions{})}
}

func (b *bare) check(f *Fetcher, leaf *testpki.Leaf) error {
	return f.Check(context.Background(), [][]*x509.Certificate{{leaf.Cert, b.ca.Cert}})
}

// writeAtomically replaces path through a rename, as deployment tools do.
func writeAtomically(t *testing.T, path string, b []byte) {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestFileSource: a file Source is read at New and read again whenever it
// changes (in place, or replaced by a rename with the same size and
// modification time); a bad rewrite keeps the CRL held; a bad file at New
// fails New.
func TestFileSource(t *testing.T) {
	b := newBare(t)
	path := filepath.Join(t.TempDir(), "ca.crl.pem")
	pemCRL := func(n int64, revoked ...*big.Int) []byte {
		return testpki.CRLPEM(b.ca.CRL(t, testpki.CRLOptions{Number: big.NewInt(n), ThisUpdate: time.Now().Add(-time.Minute).Add(time.Duration(n) * time.Second).Truncate(time.Second), Revoked: revoked}))
	}
	if err := os.WriteFile(path, pemCRL(1, b.bad.Cert.SerialNumber), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	f, rec := newFetcher(t, Options{Now: clk.Now, Sources: []Source{{File: path, Issuer: b.ca.Cert}}})
	if err := b.check(f, b.good); err != nil {
		t.Fatal(err)
	}
	if err := b.check(f, b.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	poll := func() {
		clk.Advance(DefaultFilePollInterval)
		f.pokeAll()
	}

	// Rewritten in place: both revoked now.
	if err := os.WriteFile(path, pemCRL(2, b.bad.Cert.SerialNumber, b.good.Cert.SerialNumber), 0o600); err != nil {
		t.Fatal(err)
	}
	poll()
	rec.wait(t, EventFetched, 2)
	if err := b.check(f, b.good); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the rewrite: %v", err)
	}

	// Garbage: the CRL held stays.
	writeAtomically(t, path, []byte("oops"))
	poll()
	if ev := rec.wait(t, EventFailed, 1); !errors.Is(ev.Err, ErrMalformed) {
		t.Fatalf("garbage: %v", ev.Err)
	}
	if err := b.check(f, b.good); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after garbage: %v", err)
	}

	// Replaced by a rename, same size and modification time as the file
	// it replaces: the inode tells.
	next := pemCRL(3, b.bad.Cert.SerialNumber)
	fi, _ := os.Stat(path)
	other := filepath.Join(filepath.Dir(path), "same.pem")
	if err := os.WriteFile(path, append(next, bytes.Repeat([]byte("\n"), 200)...), 0o600); err != nil {
		t.Fatal(err)
	}
	poll()
	rec.wait(t, EventFetched, 3)
	fi, _ = os.Stat(path)
	third := pemCRL(4)
	if int64(len(third)) > fi.Size() {
		t.Fatal("test CRL too long")
	}
	third = append(third, bytes.Repeat([]byte("\n"), int(fi.Size())-len(third))...)
	if err := os.WriteFile(other, third, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(other, fi.ModTime(), fi.ModTime())
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	poll()
	rec.wait(t, EventFetched, 4)
	if err := b.check(f, b.bad); err != nil {
		t.Fatalf("after the rename: %v", err)
	}

	// At New, a bad file is an error, as Node's createSecureContext throws.
	for name, body := range map[string][]byte{
		"garbage":        []byte("not a CRL"),
		"another issuer": testpki.CRLPEM(testpki.NewCA(t, "other").CRL(t, testpki.CRLOptions{})),
		"two CRLs":       append(pemCRL(1), pemCRL(2)...),
	} {
		p := filepath.Join(t.TempDir(), "bad.crl")
		os.WriteFile(p, body, 0o600)
		if g, err := New(Options{Sources: []Source{{File: p, Issuer: b.ca.Cert}}}); err == nil {
			g.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(Options{Sources: []Source{{File: path}}}); err == nil {
		t.Error("a Source without Issuer")
	}
	if _, err := New(Options{Sources: []Source{{File: path, URL: "http://x/", Issuer: b.ca.Cert}}}); err == nil {
		t.Error("a Source with URL and File")
	}
}

// TestURLSource: a URL Source gives the CRL of a CA whose certificates
// name no distribution point; it is fetched at New, before any check.
func TestURLSource(t *testing.T) {
	b := newBare(t)
	host := crltest.NewServer(t)
	host.Set("/ca.crl", b.ca.CRL(t, testpki.CRLOptions{Revoked: []*big.Int{b.bad.Cert.SerialNumber}}))
	f, rec := newFetcher(t, Options{Sources: []Source{{URL: host.URL + "/ca.crl", Issuer: b.ca.Cert}}})
	rec.wait(t, EventFetched, 1)
	if err := b.check(f, b.good); err != nil {
		t.Fatal(err)
	}
	if err := b.check(f, b.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	if st := f.CRLs(); len(st) != 1 || !st[0].Explicit || st[0].Entries != 1 {
		t.Fatalf("%+v", st)
	}
}
