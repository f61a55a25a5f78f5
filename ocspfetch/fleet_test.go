package ocspfetch

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// fleetRequest asks every Fetcher about s.leaf at once and returns what
// each stapled.
func fleetRequest(t *testing.T, fs []*Fetcher, s *scripted) [][]byte {
	t.Helper()
	out := make([][]byte, len(fs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f.OCSPRequest(s.leaf.DER, s.ca.DER, func(_ error, der []byte) { out[i] = der })
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// newFleet returns n Fetchers sharing store, each closed at the end.
func newFleet(t *testing.T, n int, clk *testclock.Clock, store Store) []*Fetcher {
	fs := make([]*Fetcher, n)
	for i := range fs {
		fs[i], _ = newFetcher(t, Options{Now: clk.Now, Store: store, HandshakeBudget: 10 * time.Second, StoreTimeout: 200 * time.Millisecond})
	}
	return fs
}

// goodWhen makes s answer Good once ready holds, so that every member of a
// fleet has asked (or waited for the lock) while the first request is in
// flight.
func goodWhen(t *testing.T, s *scripted, ready func() bool) {
	good := s.good(t)
	s.set(func(w http.ResponseWriter, r *http.Request) {
		testenv.WaitFor(t, ready)
		good(w, r)
	})
}

// refusals is a LockingStore that counts the Lock calls refused since the
// lock was last granted: how many members are waiting for the holder.
type refusals struct {
	LockingStore
	n atomic.Int64
}

func (s *refusals) Lock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	unlock, err := s.LockingStore.Lock(ctx, key, ttl)
	switch {
	case err == nil:
		s.n.Store(0)
	case errors.Is(err, ErrLocked):
		s.n.Add(1)
	}
	return unlock, err
}

// waiting reports whether n members were refused the lock since it was
// granted.
func (s *refusals) waiting(n int64) func() bool { return func() bool { return s.n.Load() >= n } }

// TestFleetSingleFetch: five Fetchers sharing a LockingStore (the
// MemoryStore) and asked at once make one responder request, and all
// staple its answer; at refresh time again one request for all, and every
// member serves the fresher answer.
func TestFleetSingleFetch(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := &refusals{LockingStore: NewMemoryStore()}
	goodWhen(t, s, store.waiting(4))
	fs := newFleet(t, 5, clk, store)
	first := fleetRequest(t, fs, s)
	for i, der := range first {
		if der == nil || string(der) != string(first[0]) {
			t.Fatalf("member %d stapled %d bytes, not the shared answer", i, len(der))
		}
	}
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("%d responder requests for 5 members, want 1", n)
	}

	clk.Advance(35 * time.Minute)
	var wg sync.WaitGroup
	for _, f := range fs {
		settle(t, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			flights, _ := f.runDue(clk.Now())
			for _, fl := range flights {
				<-fl.done
			}
		}()
	}
	wg.Wait()
	if n := s.requests.Load(); n != 2 {
		t.Fatalf("%d responder requests after one refresh of 5 members, want 2", n)
	}
	for i, der := range fleetRequest(t, fs, s) {
		resp, err := ocsp.ParseResponse(der, nil)
		if err != nil || !resp.ThisUpdate.After(clk.Now().Add(-10*time.Minute)) {
			t.Fatalf("member %d does not serve the refreshed answer: %v", i, err)
		}
	}
}

// TestFleetLockHolderDies: a member took the lock and died; the others
// wait for it to lapse, then one of them asks, and all staple within
// their budget.
func TestFleetLockHolderDies(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := NewMemoryStore()
	if _, err := store.Lock(context.Background(), storeKey(t, crypto.SHA1, s.leaf), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	fs := newFleet(t, 3, clk, store)
	for i, der := range fleetRequest(t, fs, s) {
		if der == nil {
			t.Fatalf("member %d unstapled", i)
		}
	}
	if n := s.requests.Load(); n != 1 {
		t.Fatalf("%d responder requests, want 1", n)
	}
}

// lockFailStore is a LockingStore whose Lock fails (an error, or no
// answer at all) while the rest of it works.
type lockFailStore struct {
	LockingStore
	hang chan struct{} // nil: fail at once
}

func (s lockFailStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	if s.hang != nil {
		<-s.hang
	}
	return nil, errors.New("connection refused")
}

// TestFleetLockFailure: when Lock fails or hangs, each member asks the
// responder itself: sharing is lost, stapling is not.
func TestFleetLockFailure(t *testing.T) {
	for _, hang := range []bool{false, true} {
		t.Run(map[bool]string{false: "error", true: "hang"}[hang], func(t *testing.T) {
			clk := newClock()
			s := newScripted(t, clk)
			goodWhen(t, s, func() bool { return s.requests.Load() == 3 }) // each member asks alone
			store := lockFailStore{LockingStore: NewMemoryStore()}
			if hang {
				store.hang = make(chan struct{})
				defer close(store.hang)
			}
			fs := newFleet(t, 3, clk, store)
			for i, der := range fleetRequest(t, fs, s) {
				if der == nil {
					t.Fatalf("member %d unstapled", i)
				}
			}
			if n := s.requests.Load(); n < 1 || n > 3 {
				t.Fatalf("%d responder requests", n)
			}
			for _, f := range fs {
				if f.Stats().Fetched+f.Stats().Loaded != 1 {
					t.Fatalf("stats %+v", f.Stats())
				}
			}
		})
	}
}

// TestFleetStoreIsNotTrusted: a forged response planted in the shared
// Store is refused by every member, which asks the responder.
func TestFleetStoreIsNotTrusted(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := NewMemoryStore()
	forged, err := ocsp.CreateResponse(s.ca.Cert, s.ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: s.leaf.Cert.SerialNumber,
		ThisUpdate: clk.Now().Add(-time.Minute), NextUpdate: clk.Now().Add(time.Hour)}, s.leaf.Key) // signed by the wrong key
	if err != nil {
		t.Fatal(err)
	}
	key := storeKey(t, crypto.SHA1, s.leaf)
	if err := store.Store(context.Background(), key, forged, clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fs := newFleet(t, 2, clk, store)
	for i, der := range fleetRequest(t, fs, s) {
		if der == nil || string(der) == string(forged) {
			t.Fatalf("member %d: %d bytes, forged %v", i, len(der), string(der) == string(forged))
		}
	}
}

// lateAnswerStore stores answer under the key just before it grants the
// lock: another member finished its fetch and released the lock between
// this member's look in the Store and its Lock.
type lateAnswerStore struct {
	LockingStore
	once   sync.Once
	answer func() []byte
}

func (s *lateAnswerStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	s.once.Do(func() { s.LockingStore.Store(ctx, key, s.answer(), time.Now().Add(time.Hour)) })
	return s.LockingStore.Lock(ctx, key, ttl)
}

// TestFleetAnswerLandsBeforeLock: a member that takes the lock looks in the
// Store again before asking, so an answer that landed just before it took
// the lock is adopted and the responder is not asked a second time.
func TestFleetAnswerLandsBeforeLock(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := &lateAnswerStore{LockingStore: NewMemoryStore(), answer: func() []byte {
		return s.ca.OCSPResponse(t, s.leaf.Cert, testpki.ResponseOptions{ThisUpdate: clk.Now().Add(-time.Minute)})
	}}
	fs := newFleet(t, 1, clk, store)
	if der := fleetRequest(t, fs, s)[0]; der == nil {
		t.Fatal("unstapled")
	}
	if n := s.requests.Load(); n != 0 {
		t.Fatalf("%d responder requests although another member's answer was in the Store when the lock was taken", n)
	}
	if st := fs[0].Stats(); st.Loaded != 1 {
		t.Fatalf("Loaded = %d, want 1", st.Loaded)
	}
}

// TestFleetLockReleasedOnPanic: a fetch whose HTTP transport panics costs
// that fetch only: the fleet's lock on the certificate is released at
// once, not left for every member to wait on until it lapses.
func TestFleetLockReleasedOnPanic(t *testing.T) {
	clk := newClock()
	s := newScripted(t, clk)
	store := NewMemoryStore()
	f, rec := newFetcher(t, Options{Now: clk.Now, Store: store, HTTPClient: &http.Client{Transport: panicTransport{}}})
	if r := request(t, f, s.leaf.DER, s.ca.DER); r.der != nil {
		t.Fatal("stapled through a panicking transport")
	}
	settle(t, f)
	if ev, ok := rec.find(EventFailed); !ok || !errors.Is(ev.Err, ErrPanic) {
		t.Fatalf("no ErrPanic failure reported: %v", rec.kinds())
	}
	unlock, err := store.Lock(context.Background(), storeKey(t, crypto.SHA1, s.leaf), time.Second)
	if err != nil {
		t.Fatalf("the certificate's lock is still held after the fetch panicked: %v", err)
	}
	unlock(context.Background())
}
