// Package storefile reads and writes the files of a directory Store
// (ocspfetch's and crlfetch's NewDirStore), which several processes may
// share: a file is replaced whole or not at all, and only a regular file
// of bounded size is read.
package storefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Read returns the content of the file at path, an error wrapping
// fs.ErrNotExist when there is none. Anything but a regular file (a FIFO,
// a device) is refused without being opened for reading, and so is a file
// of more than max bytes.
func Read(path string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	case fi.Size() > max:
		return nil, fmt.Errorf("%s has %d bytes, more than %d", path, fi.Size(), max)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// Write replaces the file name in dir with data: written to a temporary
// file of dir (mode 0600, ".tmp-<name>-…"), synced, then renamed over
// name, so that a crash never leaves half of it under name.
func Write(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Remove removes the file at path; a missing file is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
