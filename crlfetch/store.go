package crlfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

func (s *dirStore) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+".crl")
}

func (s *dirStore) Load(_ context.Context, key string) ([]byte, error) {
	p := s.path(key)
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err // fs.ErrNotExist when missing
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("crlfetch: dir store: %s is not a regular file (%v)", p, fi.Mode().Type())
	case fi.Size() > maxStoreFile:
		return nil, fmt.Errorf("crlfetch: dir store: %s has %d bytes", p, fi.Size())
	}
	b := make([]byte, 0, fi.Size())
	n, err := io.ReadFull(f, b[:fi.Size()])
	if err != nil {
		return nil, fmt.Errorf("crlfetch: dir store: reading %s: %w", p, err)
	}
	return b[:n], nil
}

func (s *dirStore) Store(_ context.Context, key string, der []byte) error {
	p := s.path(key)
	f, err := os.CreateTemp(s.dir, ".tmp-*.crl") // 0600
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
		werr = os.Rename(tmp, p)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

func (s *dirStore) Delete(_ context.Context, key string) error {
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
