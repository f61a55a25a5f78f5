package ocspfetch

import (
	"context"
	"crypto"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// storeKey is the Store key of leaf under hash h.
func storeKey(t *testing.T, h crypto.Hash, leaf *testpki.Leaf) string {
	t.Helper()
	id, err := newCertID(h, leaf.Cert, leaf.Issuer.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return id.key()
}

// closeWithin closes f and fails the test if Close has not returned
// within limit (a deadlock guard, not a timing assertion); it returns
// Close's error.
func closeWithin(t *testing.T, f *Fetcher, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Close has not returned after %v", limit)
		return nil
	}
}

// TestDirStoreRefusesFIFO: a FIFO at a key's path is refused at once (not
// a regular file): the first handshake is stapled from the responder and
// Close returns.
func TestDirStoreRefusesFIFO(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	dir := t.TempDir()
	fifo := filepath.Join(dir, storeKey(t, crypto.SHA1, s.leaf)+".ocsp")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, rec := newFetcher(t, Options{Now: clk.Now, Store: store, HandshakeBudget: 5 * time.Second})
	t.Cleanup(func() { // releases a reader stuck on the FIFO (old behaviour)
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	if res := request(t, f, s.leaf.DER, s.ca.DER); res.der == nil {
		t.Fatalf("a FIFO in the store kept the first handshake unstapled (events %v)", rec.kinds())
	}
	if _, ok := rec.find(EventStoreError); !ok {
		t.Fatalf("the FIFO was not reported: %v", rec.kinds())
	}
	closeWithin(t, f, 10*time.Second)

	// Directly: Load answers at once with an error that is not a miss.
	if err := os.Remove(fifo); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := store.Load(context.Background(), storeKey(t, crypto.SHA1, s.leaf))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Load of a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}

// TestDirStoreReadsBounded: a huge file under a key is refused without
// being read whole.
func TestDirStoreReadsBounded(t *testing.T) {
	dir := t.TempDir()
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := "sha1-00-11-22"
	fh, err := os.Create(filepath.Join(dir, key+".ocsp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(64 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	fh.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := store.Load(context.Background(), key)
	runtime.ReadMemStats(&after)
	if err == nil || errors.Is(err, ErrCacheMiss) {
		t.Fatalf("Load of a 64 MiB file: %d bytes, err %v", len(b), err)
	}
	if read := after.TotalAlloc - before.TotalAlloc; read > 1<<20 {
		t.Fatalf("Load allocated %d bytes for a file it refuses", read)
	}
}

// TestStoreResponseBoundedByMaxResponseSize: whatever a Store returns is
// held to MaxResponseSize like a responder's body: a larger (here genuine,
// padded) response is refused and reported, and the responder asked.
func TestStoreResponseBoundedByMaxResponseSize(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := NewMemoryStore()
	key := storeKey(t, crypto.SHA1, s.leaf)
	genuine := s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute)})
	if err := store.Store(context.Background(), key, padCerts(t, genuine, s.ca.Cert, 20000), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f, rec := newFetcher(t, Options{Now: clk.Now, Store: store, MaxResponseSize: 10000})
	res := request(t, f, s.leaf.DER, s.ca.DER)
	if res.der == nil || len(res.der) > 10000 {
		t.Fatalf("staple %d bytes", len(res.der))
	}
	if s.requests.Load() != 1 {
		t.Fatalf("%d responder requests: the oversized stored response was used", s.requests.Load())
	}
	if ev, ok := rec.find(EventStoreError); !ok || !errors.Is(ev.Err, ErrResponseTooLarge) {
		t.Fatalf("oversized stored response not reported: %v", rec.kinds())
	}
}

// stuckStore is a Store whose every call blocks, ignoring its context,
// until release is closed: a hung network mount, a wedged database.
type stuckStore struct {
	release chan struct{}
	calls   atomic.Int64
}

func (s *stuckStore) wait() {
	s.calls.Add(1)
	<-s.release
}

func (s *stuckStore) Load(context.Context, string) ([]byte, error) {
	s.wait()
	return nil, ErrCacheMiss
}

func (s *stuckStore) Store(context.Context, string, []byte, time.Time) error { s.wait(); return nil }
func (s *stuckStore) Delete(context.Context, string) error                   { s.wait(); return nil }

// TestStuckStore: a Store that never returns costs neither the handshake
// (stapled within its budget from the responder) nor Close, which returns
// within its bound and says a Store call was abandoned. The stuck calls end
// when the Store returns (goleak in TestMain checks it).
func TestStuckStore(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	st := &stuckStore{release: make(chan struct{})}
	f, rec := newFetcher(t, Options{Now: clk.Now, Store: st, HandshakeBudget: 10 * time.Second})
	released := false
	t.Cleanup(func() {
		if !released {
			close(st.release)
		}
	})
	res := request(t, f, s.leaf.DER, s.ca.DER)
	if res.der == nil {
		t.Fatalf("a stuck Store kept the handshake unstapled (events %v)", rec.kinds())
	}
	if again := request(t, f, s.leaf.DER, s.ca.DER); again.der == nil {
		t.Fatal("second handshake unstapled")
	}
	if ev, ok := rec.find(EventStoreError); !ok || !errors.Is(ev.Err, ErrStore) {
		t.Fatalf("stuck Store not reported: %v", rec.kinds())
	}
	err := closeWithin(t, f, 10*time.Second)
	if !errors.Is(err, ErrStore) {
		t.Fatalf("Close with a stuck Store call: %v, want an error wrapping ErrStore", err)
	}
	close(st.release)
	released = true
}

// TestDirStoreEveryCertIDHash: DirStore keeps responses under every
// supported CertIDHash, long serials included, and a restart serves them.
func TestDirStoreEveryCertIDHash(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	var leaf *testpki.Leaf
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		req := decodeRequest(t, r)
		writeOCSP(w, ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{IssuerHash: req.HashAlgorithm}))
	}))
	defer srv.Close()
	serial := new(big.Int).Lsh(big.NewInt(1), 158) // 20 octets, the most RFC 5280 allows
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run(h.String(), func(t *testing.T) {
			serial.Add(serial, big.NewInt(1))
			leaf = ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{srv.URL}, Serial: new(big.Int).Set(serial)})
			dir := t.TempDir()
			open := func() (*Fetcher, *recorder) { return dirFetcher(t, dir, Options{CertIDHash: h}) }
			f1, rec := open()
			if res := request(t, f1, leaf.DER, ca.DER); res.der == nil {
				t.Fatalf("no staple: %v", rec.kinds())
			}
			f1.Close()
			if ev, ok := rec.find(EventStoreError); ok {
				t.Fatalf("store error: %v", ev.Err)
			}
			before := requests.Load()
			f2, _ := open()
			if res := request(t, f2, leaf.DER, ca.DER); res.der == nil {
				t.Fatal("no staple after the restart")
			}
			if requests.Load() != before || f2.Stats().Loaded != 1 {
				t.Fatalf("the restart asked the responder (%d requests) instead of loading", requests.Load()-before)
			}
		})
	}
}
