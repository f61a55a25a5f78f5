package ocspfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tlsemit/tlsemit/internal/storefile"
	"github.com/tlsemit/tlsemit/internal/userhook"
)

// Store keeps DER OCSP responses by key. Keys are CertID strings such as
// "sha1-<issuer name hash>-<issuer key hash>-<serial>" in lower-case hex:
// about 130 characters with SHA-1, over 300 with SHA-512.
//
// The Fetcher trusts a Store for nothing. Integrity: it verifies every
// response it loads as it verifies a responder's. Availability: it bounds
// every call by Options.StoreTimeout (a call still running then is
// abandoned: it may finish later, unobserved), recovers a call's panic,
// holds what Load returns to Options.MaxResponseSize, and goes on without
// the Store when it fails. Implementations must be safe for concurrent use
// and should return when ctx is done.
type Store interface {
	// Load returns the response stored under key, or an error wrapping
	// ErrCacheMiss when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Store saves der under key, replacing any previous value. expires is
	// the response's NextUpdate (ThisUpdate plus NoNextUpdateLifetime for
	// one without it): after it the response is of no use, and a Store may
	// forget it (a Redis TTL, say) without parsing it.
	Store(ctx context.Context, key string, der []byte, expires time.Time) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// LockingStore is a Store shared by several Fetchers (a fleet) that can
// also hold a short-lived lock per key, so that one of them asks the
// responder while the others wait for what it stores.
//
// Before asking the responder about a certificate, a Fetcher first adopts
// a verified response from the Store that is fresher than its own (a later
// ThisUpdate). If there is none it takes the key's lock and asks. If
// another holds the lock, it polls the Store until a fresher response
// appears there, or until it can take the lock itself (the holder is done,
// or died and its lock lapsed), within the time its fetch has; a handshake
// waiting for it still waits no longer than HandshakeBudget. A Lock that
// fails, panics or takes longer than StoreTimeout costs only the sharing:
// the Fetcher asks the responder itself.
//
// On Redis: Lock is SET <lock key> <random token> NX PX <ttl>, a nil reply
// meaning ErrLocked; unlock deletes the lock key only if it still holds
// that token (a compare-and-delete script).
type LockingStore interface {
	Store
	// Lock takes the lock on key for ttl without waiting for it. It
	// returns an error wrapping ErrLocked when another holds it. unlock
	// releases the lock if it is still the one taken; the lock lapses by
	// itself after ttl.
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, err error)
}

// NewMemoryStore returns a LockingStore that keeps responses in memory.
// Fetchers of one process that share it share their staples and ask the
// responder once for all of them.
func NewMemoryStore() LockingStore {
	return &memoryStore{m: make(map[string][]byte), locks: make(map[string]memoryLock)}
}

type memoryStore struct {
	mu    sync.Mutex
	m     map[string][]byte
	locks map[string]memoryLock
	token uint64
}

type memoryLock struct {
	token uint64
	until time.Time
}

func (s *memoryStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return nil, ErrCacheMiss
	}
	return append([]byte(nil), b...), nil
}

func (s *memoryStore) Store(_ context.Context, key string, der []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), der...)
	return nil
}

func (s *memoryStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memoryStore) Lock(_ context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[key]; ok && now.Before(l.until) {
		return nil, ErrLocked
	}
	s.token++
	token := s.token
	s.locks[key] = memoryLock{token: token, until: now.Add(ttl)}
	return func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.locks[key].token == token {
			delete(s.locks, key)
		}
		return nil
	}, nil
}

// maxStoredSize bounds what a DirStore reads: no staple that fits a
// handshake is larger (see maxStapleSize).
const maxStoredSize = maxHandshakeMessage

// NewDirStore returns a Store that keeps each response in dir as a file
// <key>.ocsp (a key too long for a file name, or with other characters
// than letters, digits and '-', is named by its SHA-256 instead), mode
// 0600, creating dir (0700) if needed. Writes go to a temporary file that
// is renamed into place, so a crash never leaves a half-written response
// under a key. Reads take only regular files (a FIFO or a device under a
// key is refused, not opened for reading) of at most 64 KiB. The Fetcher
// ignores (and replaces) a file that is corrupt or expired.
func NewDirStore(dir string) (Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ocspfetch: dir store: %w", err)
	}
	return &dirStore{dir: dir}, nil
}

type dirStore struct{ dir string }

// name is key's file name, without the extension.
func (s *dirStore) name(key string) string {
	plain := key != "" && len(key) <= 200
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			plain = false
			break
		}
	}
	if plain {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "_" + hex.EncodeToString(sum[:]) // '_' is never in a plain name
}

func (s *dirStore) path(key string) string { return filepath.Join(s.dir, s.name(key)+".ocsp") }

func (s *dirStore) Load(_ context.Context, key string) ([]byte, error) {
	b, err := storefile.Read(s.path(key), maxStoredSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, ErrCacheMiss
	case err != nil:
		return nil, fmt.Errorf("ocspfetch: dir store: %w", err)
	}
	return b, nil
}

func (s *dirStore) Store(_ context.Context, key string, der []byte, _ time.Time) error {
	return storefile.Write(s.dir, s.name(key)+".ocsp", der)
}

func (s *dirStore) Delete(_ context.Context, key string) error { return storefile.Remove(s.path(key)) }

// storeDo is userhook.StoreCall for a Store call that returns only an
// error, which it reports for e.
func (f *Fetcher) storeDo(ctx context.Context, e *entry, op string, call func(context.Context) error) {
	_, err := userhook.StoreCall(&f.guard, ctx, op, func(ctx context.Context) (struct{}, error) { return struct{}{}, call(ctx) })
	f.storeError(e, err)
}

// storeError reports a failed Store call.
func (f *Fetcher) storeError(e *entry, err error) {
	if err != nil {
		f.emit(e, Event{Kind: EventStoreError, Err: err})
	}
}
