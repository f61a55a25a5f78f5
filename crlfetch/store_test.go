package crlfetch

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

func down(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "down", http.StatusServiceUnavailable)
}

// TestStoreSurvivesRestart: a restart during an outage of the CRL host
// keeps enforcing: the CRLs come from the DirStore, verified again.
func TestStoreSurvivesRestart(t *testing.T) {
	m := newMTLS(t)
	m.publish(t, testpki.CRLOptions{})
	dir := t.TempDir()
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	f1, _ := newFetcher(t, Options{Store: store})
	if err := m.check(f1, m.bad); !errors.Is(err, ErrRevoked) {
		t.Fatal(err)
	}
	f1.Close() // waits for the Store writes
	files, _ := filepath.Glob(filepath.Join(dir, "*.crl"))
	if len(files) != 2 {
		t.Fatalf("stored files: %v", files)
	}
	for _, p := range files {
		fi, _ := os.Stat(p)
		der, _ := os.ReadFile(p)
		if fi.Mode().Perm() != 0o600 || der[0] != 0x30 {
			t.Fatalf("%s: mode %v, first byte %x", p, fi.Mode(), der[0])
		}
	}

	m.host.Handle("/inter.crl", down)
	m.host.Handle("/root.crl", down)
	f2, rec := newFetcher(t, Options{Store: store})
	if err := m.check(f2, m.bad); !errors.Is(err, ErrRevoked) || crl.Code(err) != "CERT_REVOKED" {
		t.Fatalf("after the restart, host down: %v", err)
	}
	if err := m.check(f2, m.good); err != nil {
		t.Fatalf("good client after the restart: %v", err)
	}
	if rec.count(EventLoaded) != 2 {
		t.Fatalf("events %v", rec.kinds())
	}
	if st := status(t, f2, m.host.URL+"/inter.crl"); st.Origin != "store" {
		t.Fatalf("status %+v", st)
	}
}

// TestStoreIsVerified: what a Store returns is verified like a host's CRL;
// a forged, foreign, corrupt, expired or oversized one is refused, deleted
// and never used.
func TestStoreIsVerified(t *testing.T) {
	m := newMTLS(t)
	other := testpki.NewCA(t, "crlfetch inter") // same name, another key
	stranger := testpki.NewCA(t, "stranger")
	now := time.Now()
	for name, planted := range map[string][]byte{
		"forged":   m.inter.CRL(t, testpki.CRLOptions{SignWith: other.Key}),
		"foreign":  stranger.CRL(t, testpki.CRLOptions{}),
		"corrupt":  []byte("<html>not a CRL</html>"),
		"expired":  m.inter.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}),
		"oversize": append(m.inter.CRL(t, testpki.CRLOptions{}), make([]byte, 4096)...),
	} {
		t.Run(name, func(t *testing.T) {
			store := newMemStore()
			key := m.host.URL + "/inter.crl"
			store.Store(context.Background(), key, planted)
			m.host.Handle("/inter.crl", down)
			m.publishRoot(t)
			f, rec := newFetcher(t, Options{Store: store, MaxSize: 2048})
			err := m.check(f, m.good)
			if !errors.Is(err, ErrNoCRL) && !errors.Is(err, ErrHTTPStatus) {
				t.Fatalf("planted %s: %v", name, err)
			}
			if rec.count(EventStoreError) == 0 || rec.count(EventLoaded) != 0 {
				t.Fatalf("events %v", rec.kinds())
			}
			if _, err := store.Load(context.Background(), key); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the refused value was not deleted: %v", err)
			}
		})
	}
}

// publishRoot serves the root's CRL only.
func (m *mtls) publishRoot(t testing.TB) {
	m.host.Set("/root.crl", m.root.CRL(t, testpki.CRLOptions{}))
}

// memStore is a Store in memory, for tests.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// newMemStore returns a Store in memory.
func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return bytes.Clone(b), nil
}

func (s *memStore) Store(_ context.Context, key string, der []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = bytes.Clone(der)
	return nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// hostileStore panics, hangs or fails, as told.
type hostileStore struct {
	mode    string // "panic", "hang", "fail"
	release chan struct{}
}

func (s *hostileStore) do(ctx context.Context) error {
	switch s.mode {
	case "panic":
		panic("store exploded")
	case "hang":
		<-s.release // ignores ctx: a wedged mount
		return nil
	}
	return errors.New("disk full")
}

func (s *hostileStore) Load(ctx context.Context, key string) ([]byte, error) { return nil, s.do(ctx) }
func (s *hostileStore) Store(ctx context.Context, key string, der []byte) error {
	return s.do(ctx)
}
func (s *hostileStore) Delete(ctx context.Context, key string) error { return s.do(ctx) }

// TestStoreContained: a Store that panics, hangs or fails costs nothing
// but itself: the CRLs come from the host, and a hanging Store delays a
// first check by StoreTimeout at most.
func TestStoreContained(t *testing.T) {
	for _, mode := range []string{"panic", "hang", "fail"} {
		t.Run(mode, func(t *testing.T) {
			m := newMTLS(t)
			m.publish(t, testpki.CRLOptions{})
			s := &hostileStore{mode: mode, release: make(chan struct{})}
			f, rec := newFetcher(t, Options{Store: s, StoreTimeout: 50 * time.Millisecond})
			if err := m.check(f, m.bad); !errors.Is(err, ErrRevoked) {
				t.Fatalf("%s store: %v", mode, err)
			}
			if err := m.check(f, m.good); err != nil {
				t.Fatalf("%s store: %v", mode, err)
			}
			ev := rec.wait(t, EventStoreError, 1)
			want := map[string]error{"panic": ErrPanic, "hang": ErrStore, "fail": ErrStore}[mode]
			if !errors.Is(ev.Err, want) {
				t.Fatalf("store error %v, want %v", ev.Err, want)
			}
			err := f.Close()
			if mode == "hang" && !errors.Is(err, ErrStore) {
				t.Fatalf("Close with a hanging Store call: %v", err)
			}
			close(s.release) // let the abandoned calls end before goleak looks
			if n := f.guard.Calls.Wait(time.Now().Add(10 * time.Second)); n != 0 {
				t.Fatalf("%d Store calls still running once released", n)
			}
		})
	}
}

// TestDirStoreRefusesSpecialFiles: a FIFO under a key is refused at once,
// not opened for reading (which would wait for a writer).
func TestDirStoreRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds := s.(*dirStore)
	if err := syscall.Mkfifo(ds.path("http://x/y.crl"), 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Load(context.Background(), "http://x/y.crl"); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	if _, err := s.Load(context.Background(), "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	if err := s.Delete(context.Background(), "missing"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := s.Store(context.Background(), "k", []byte{0x30, 0}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load(context.Background(), "k"); err != nil || !bytes.Equal(b, []byte{0x30, 0}) {
		t.Fatalf("round trip: %x %v", b, err)
	}
}
