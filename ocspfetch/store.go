package ocspfetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Store keeps DER OCSP responses by key. Keys are CertID strings such as
// "sha1-<issuer name hash>-<issuer key hash>-<serial>" (hex, safe as file
// names). The Fetcher verifies everything it loads, so a Store need not be
// trusted for integrity, only for availability. Implementations must be
// safe for concurrent use.
type Store interface {
	// Load returns the response stored under key, or an error wrapping
	// ErrCacheMiss when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Store saves der under key, replacing any previous value.
	Store(ctx context.Context, key string, der []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// NewMemoryStore returns a Store that keeps responses in memory.
func NewMemoryStore() Store { return &memoryStore{m: make(map[string][]byte)} }

type memoryStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (s *memoryStore) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.m[key]
	if !ok {
		return nil, ErrCacheMiss
	}
	return append([]byte(nil), b...), nil
}

func (s *memoryStore) Store(_ context.Context, key string, der []byte) error {
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

// NewDirStore returns a Store that keeps each response in dir as
// <key>.ocsp, mode 0600, creating dir (0700) if needed. Writes go to a
// temporary file that is renamed into place, so a crash never leaves a
// half-written response under a key. The Fetcher ignores (and replaces) a
// file that is corrupt or expired.
func NewDirStore(dir string) (Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ocspfetch: dir store: %w", err)
	}
	return &dirStore{dir: dir}, nil
}

type dirStore struct{ dir string }

func (s *dirStore) path(key string) (string, error) {
	if key == "" || len(key) > 200 {
		return "", fmt.Errorf("ocspfetch: dir store: bad key %q", key)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", fmt.Errorf("ocspfetch: dir store: bad key %q", key)
		}
	}
	return filepath.Join(s.dir, key+".ocsp"), nil
}

func (s *dirStore) Load(_ context.Context, key string) ([]byte, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrCacheMiss
	}
	return b, err
}

func (s *dirStore) Store(_ context.Context, key string, der []byte) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600; the rename publishes it whole.
	f, err := os.CreateTemp(s.dir, ".tmp-"+key+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(der)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o600)
	}
	if werr == nil {
		werr = os.Rename(tmp, p)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

func (s *dirStore) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
