package crlfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tlsemit/tlsemit/internal/storefile"
)

// Store keeps the last verified CRL of each URL, by key (the URL), so
// that a restarted Fetcher enforces revocation before, or without, its
// first fetch.
//
// The Fetcher trusts a Store for nothing. Integrity: what Load returns is
// verified as a host's CRL is (issuer, signature, time, size). Availability:
// each call is bounded by Options.StoreTimeout (a call still running then
// is abandoned), a panic is recovered, and the Fetcher goes on without the
// Store when it fails. Implementations must be safe for concurrent use and
// should return when ctx is done.
type Store interface {
	// Load returns the DER CRL stored under key, or an error wrapping
	// fs.ErrNotExist when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Store saves der under key, replacing what was there.
	Store(ctx context.Context, key string, der []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// maxStoreFile bounds what a DirStore reads, whatever the Fetcher's
// MaxSize (which it then applies): a sanity limit, not a policy.
const maxStoreFile = 1 << 30

// NewDirStore returns a Store that keeps each CRL in dir as
// <SHA-256 of the key, in hex>.crl, the DER as the CRL host served it (so
// `openssl crl -inform DER -in <file>` reads it), mode 0600, creating dir
// (0700) if needed. Writes go to a temporary file renamed into place, so a
// crash never leaves half a CRL under a key; reads take only regular files
// (a FIFO or a device under a key is refused, not opened for reading).
// Several Fetchers, in one process or several, may share dir.
func NewDirStore(dir string) (Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crlfetch: dir store: %w", err)
	}
	return &dirStore{dir: dir}, nil
}

type dirStore struct{ dir string }

// name is key's file name.
func (s *dirStore) name(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:]) + ".crl"
}

func (s *dirStore) path(key string) string { return filepath.Join(s.dir, s.name(key)) }

func (s *dirStore) Load(_ context.Context, key string) ([]byte, error) {
	b, err := storefile.Read(s.path(key), maxStoreFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("crlfetch: dir store: %w", err)
	}
	return b, err
}

func (s *dirStore) Store(_ context.Context, key string, der []byte) error {
	return storefile.Write(s.dir, s.name(key), der)
}

func (s *dirStore) Delete(_ context.Context, key string) error { return storefile.Remove(s.path(key)) }
