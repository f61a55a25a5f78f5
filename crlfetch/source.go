package crlfetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlsemit/tlsemit/internal/backoff"
	"github.com/tlsemit/tlsemit/internal/crl"
	"github.com/tlsemit/tlsemit/internal/httpfetch"
	"github.com/tlsemit/tlsemit/internal/userhook"
)

// source is one CRL: a URL (a distribution point, or a Source) or a file,
// its CRL in force and its fetching state. One goroutine (run) does all of
// its fetching, so a URL is never fetched twice at once.
type source struct {
	key       string // the URL or the file's path
	url, path string
	explicit  bool // from Options.Sources: never forgotten

	cur      atomic.Pointer[held] // the CRL in force; nil until the first
	ready    chan struct{}        // closed once a CRL is held or the first fetch failed
	readyOK  atomic.Bool          // ready is closed
	lastUsed atomic.Int64         // Options.Now UnixNano of the last check that needed it
	wake     chan struct{}

	mu                 sync.Mutex
	issuers            []*x509.Certificate // the CA certificates its CRL may be verified with
	failures           int                 // since the last success
	lastErr            error
	lastFetch          time.Time // the last attempt
	nextFetch          time.Time // when to fetch (or poll) next
	expiryAt           time.Time // when the held CRL expires (nextUpdate + Grace); zero: none, or reported
	storeTried         bool
	etag, lastModified string    // validators of the held CRL, for a conditional GET
	stamp              fileStamp // the file as last read
}

// sourceErr says which source an error is about.
type sourceErr struct {
	source string
	err    error
}

func (e *sourceErr) Error() string { return "crlfetch: " + e.source + ": " + e.err.Error() }
func (e *sourceErr) Unwrap() error { return e.err }

// held is a verified CRL in force.
type held struct {
	crl    *crl.CRL
	size   int       // bytes of DER
	at     time.Time // when it was installed
	origin string    // "network", "store" or "file"
}

// fileStamp tells whether a file changed without reading it.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	sum   [32]byte
}

const maxIssuers = 8 // cross-signed CA certificates share a name and key

func newSource(key, url, path string, explicit bool, now time.Time) *source {
	s := &source{key: key, url: url, path: path, explicit: explicit, ready: make(chan struct{}), wake: make(chan struct{}, 1)}
	s.lastUsed.Store(now.UnixNano())
	return s
}

// touch records a check that needed s, at most once a minute (a store to
// a shared cache line on every handshake would cost more than it tells).
func (s *source) touch(now time.Time) {
	if n := now.UnixNano(); n-s.lastUsed.Load() > int64(time.Minute) {
		s.lastUsed.Store(n)
	}
}

func (s *source) isReady() bool { return s.readyOK.Load() }

// markReady releases the checks waiting for s's first CRL.
func (s *source) markReady() {
	if !s.readyOK.Swap(true) {
		close(s.ready)
	}
}

// addIssuer offers a CA certificate to verify s's CRL with. If the last
// fetch failed for want of it, the next one comes at once.
func (s *source) addIssuer(c *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.issuers {
		if bytes.Equal(have.Raw, c.Raw) {
			return
		}
	}
	if len(s.issuers) >= maxIssuers {
		return
	}
	s.issuers = append(s.issuers, c)
	if errors.Is(s.lastErr, ErrNoIssuer) && s.url != "" {
		s.nextFetch = time.Time{}
		s.poke()
	}
}

// issuedBy reports whether s's CRL is meant to be issuer's.
func (s *source) issuedBy(issuer *x509.Certificate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.issuers {
		if bytes.Equal(c.RawSubject, issuer.RawSubject) {
			return true
		}
	}
	return false
}

// failure is s's last failure while it holds no usable CRL, else nil.
func (s *source) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *source) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maxSleep bounds a loop's sleep, so that a clock that jumps (or a fake
// one in tests) is noticed within it.
const maxSleep = time.Minute

// run is s's goroutine: it fetches (or polls) when due, reports the held
// CRL's expiry, and forgets an idle distribution point.
func (f *Fetcher) run(s *source) {
	t := time.NewTimer(maxSleep)
	defer t.Stop()
	for f.ctx.Err() == nil {
		now := f.now()
		s.mu.Lock()
		due, expiry := s.nextFetch, s.expiryAt
		s.mu.Unlock()
		if !s.explicit && now.Sub(time.Unix(0, s.lastUsed.Load())) > idleTimeout {
			f.remove(s)
			return
		}
		if !expiry.IsZero() && !now.Before(expiry) {
			f.expired(s)
			continue
		}
		if !now.Before(due) {
			f.step(s, now)
			continue
		}
		next := due
		if !expiry.IsZero() && expiry.Before(next) {
			next = expiry
		}
		t.Reset(min(next.Sub(now), maxSleep))
		select {
		case <-f.ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
	}
}

// step makes one attempt: a file poll, or for a URL, the Store first
// (once), then the host. A panic in what it calls (a custom HTTP
// transport) fails that attempt only.
func (f *Fetcher) step(s *source, now time.Time) {
	defer func() {
		if v := recover(); v != nil {
			f.stats.panics.Add(1)
			f.failed(s, newErr(ErrPanic, fmt.Sprint(v), nil))
		}
	}()
	if s.path != "" {
		s.mu.Lock()
		s.nextFetch = now.Add(f.opts.FilePollInterval)
		s.mu.Unlock()
		if err := f.pollFile(s, now); err != nil {
			f.failed(s, err)
		}
		return
	}
	s.mu.Lock()
	tryStore := !s.storeTried && f.opts.Store != nil
	s.storeTried = true
	s.mu.Unlock()
	if tryStore {
		f.fromStore(s)
		s.mu.Lock()
		due := !f.now().Before(s.nextFetch)
		s.mu.Unlock()
		if !due {
			return // the stored CRL is in force; its refresh is scheduled
		}
	}
	f.fetchURL(s)
}

// fetchURL gets s's CRL from its host, conditionally when one is held.
func (f *Fetcher) fetchURL(s *source) {
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.FetchTimeout)
	defer cancel()
	var etag, lastMod string
	s.mu.Lock()
	if h := s.cur.Load(); h != nil && h.origin == "network" {
		etag, lastMod = s.etag, s.lastModified
	}
	s.lastFetch = f.now()
	s.mu.Unlock()
	start := time.Now()
	resp, err := f.get.Get(ctx, s.url, etag, lastMod)
	took := time.Since(start)
	if f.ctx.Err() != nil {
		return // closed: not a failure
	}
	if err != nil {
		if errors.Is(err, httpfetch.ErrEncoding) {
			err = newErr(ErrMalformed, "", err)
		}
		err = &sourceErr{s.url, err}
		f.met.fetch(took, "", err)
		f.failed(s, err)
		return
	}
	if resp.NotModified {
		f.met.fetch(took, "not_modified", nil)
		f.unchanged(s, resp.ETag, resp.LastModified)
		return
	}
	outcome, save, err := f.accept(s, resp.Body, "network", resp.ETag, resp.LastModified)
	f.met.fetch(took, outcome, err)
	if err != nil {
		f.failed(s, &sourceErr{s.url, err})
		return
	}
	s.markReady() // reported and counted first: a check released now finds both
	if save != nil {
		save() // no check waits for the disk
	}
}

// fromStore installs the Store's CRL for s, verified again; one that is
// refused is reported and deleted.
func (f *Fetcher) fromStore(s *source) {
	der, err := userhook.StoreCall(&f.guard, f.ctx, "Load", func(ctx context.Context) ([]byte, error) { return f.opts.Store.Load(ctx, s.key) })
	if errors.Is(err, fs.ErrNotExist) || f.ctx.Err() != nil {
		return
	}
	if err == nil && int64(len(der)) > f.opts.MaxSize {
		err = newErr(ErrTooLarge, fmt.Sprintf("%d bytes stored, more than MaxSize", len(der)), nil)
	}
	if err == nil {
		_, _, err = f.accept(s, der, "store", "", "")
	}
	if err == nil {
		s.markReady()
		return
	}
	if err != nil {
		f.emit(Event{Kind: EventStoreError, Source: s.key, Err: err})
		if !errors.Is(err, ErrStore) && !errors.Is(err, ErrPanic) {
			_, derr := userhook.StoreCall(&f.guard, context.Background(), "Delete", func(ctx context.Context) (struct{}, error) {
				return struct{}{}, f.opts.Store.Delete(ctx, s.key)
			})
			if derr != nil {
				f.emit(Event{Kind: EventStoreError, Source: s.key, Err: derr})
			}
		}
	}
}

// pollFile reads s's file again if it changed (size, modification time,
// inode, then contents) and installs its CRL.
func (f *Fetcher) pollFile(s *source, now time.Time) error {
	fh, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return newErr(ErrUnreachable, s.path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return newErr(ErrUnreachable, s.path, err)
	}
	if !fi.Mode().IsRegular() {
		return newErr(ErrUnreachable, s.path+" is not a regular file", nil)
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	s.mu.Lock()
	last := s.stamp
	s.mu.Unlock()
	if st.size == last.size && st.mtime.Equal(last.mtime) && st.ino == last.ino {
		return nil
	}
	if st.size > f.opts.MaxSize {
		s.setStamp(st)
		return newErr(ErrTooLarge, fmt.Sprintf("%s has %d bytes, more than MaxSize", s.path, st.size), nil)
	}
	b, err := io.ReadAll(io.LimitReader(fh, f.opts.MaxSize+1))
	if err != nil {
		return newErr(ErrUnreachable, s.path, err)
	}
	if int64(len(b)) > f.opts.MaxSize {
		return newErr(ErrTooLarge, s.path+" grew past MaxSize", nil)
	}
	st.sum = sha256.Sum256(b)
	s.setStamp(st)
	if st.sum == last.sum && s.cur.Load() != nil {
		return nil // touched, not changed
	}
	if _, _, err := f.accept(s, b, "file", "", ""); err != nil {
		return &sourceErr{s.path, err}
	}
	s.markReady()
	return nil
}

func (s *source) setStamp(st fileStamp) {
	s.mu.Lock()
	s.stamp = st
	s.mu.Unlock()
}

// accept verifies body as s's new CRL and installs it: it returns the
// fetch's outcome ("new" or "unchanged") and, for a CRL from the network
// with a Store, the saving to do once waiting checks are released; or why
// the CRL was refused. The CRL held before stays unless the new one is
// verified, in date and not older. The caller marks s ready.
func (f *Fetcher) accept(s *source, body []byte, origin, etag, lastMod string) (string, func(), error) {
	ders, err := crl.Decode(body)
	if err != nil {
		return "", nil, err
	}
	if len(ders) != 1 {
		return "", nil, newErr(ErrMalformed, fmt.Sprintf("%d CRLs where one was expected (give one Source each)", len(ders)), nil)
	}
	der := ders[0]
	s.mu.Lock()
	issuers := append([]*x509.Certificate(nil), s.issuers...)
	s.mu.Unlock()
	c, err := crl.Load(der, issuers...)
	if err != nil {
		return "", nil, err
	}
	now := f.now()
	if err := f.policy.Usable(c, now); err != nil {
		return "", nil, err
	}
	cur := s.cur.Load()
	if cur != nil && bytes.Equal(cur.crl.Issuer.RawSubjectPublicKeyInfo, c.Issuer.RawSubjectPublicKeyInfo) {
		switch {
		case older(c, cur.crl):
			return "", nil, newErr(ErrOlderCRL, fmt.Sprintf("number %v thisUpdate %s, held: number %v thisUpdate %s",
				c.Number, c.ThisUpdate.UTC().Format(time.RFC3339), cur.crl.Number, cur.crl.ThisUpdate.UTC().Format(time.RFC3339)), nil)
		case same(c, cur.crl):
			f.unchanged(s, etag, lastMod)
			return "unchanged", nil, nil
		}
	}
	h := &held{crl: c, size: len(der), at: now, origin: origin}
	s.mu.Lock()
	s.cur.Store(h)
	s.failures, s.lastErr = 0, nil
	s.etag, s.lastModified = etag, lastMod
	s.nextFetch = f.refreshAt(c, now)
	if s.path != "" {
		s.nextFetch = now.Add(f.opts.FilePollInterval)
	}
	s.expiryAt = time.Time{}
	if !c.NextUpdate.IsZero() {
		s.expiryAt = c.NextUpdate.Add(f.opts.Grace)
	}
	s.mu.Unlock()
	f.rebuild() // before s is marked ready: a check released then sees the CRL
	kind := EventFetched
	if origin == "store" {
		kind = EventLoaded
	}
	f.emit(Event{Kind: kind, Source: s.key, Issuer: c.Issuer.Subject.String(), ThisUpdate: c.ThisUpdate,
		NextUpdate: c.NextUpdate, Number: c.Number, Entries: c.Len()})
	var save func()
	if origin == "network" && f.opts.Store != nil {
		save = func() {
			_, err := userhook.StoreCall(&f.guard, context.Background(), "Store", func(ctx context.Context) (struct{}, error) {
				return struct{}{}, f.opts.Store.Store(ctx, s.key, der)
			})
			if err != nil {
				f.emit(Event{Kind: EventStoreError, Source: s.key, Err: err})
			}
		}
	}
	return "new", save, nil
}

// older reports whether a is older than b: a lower CRL number, or an
// earlier thisUpdate.
func older(a, b *crl.CRL) bool {
	return a.Number != nil && b.Number != nil && a.Number.Cmp(b.Number) < 0 || a.ThisUpdate.Before(b.ThisUpdate)
}

// same reports whether a is b again (same number, if any, same
// thisUpdate).
func same(a, b *crl.CRL) bool {
	return (a.Number == nil || b.Number == nil || a.Number.Cmp(b.Number) == 0) && a.ThisUpdate.Equal(b.ThisUpdate)
}

// unchanged handles an answer that is the CRL held (304 Not Modified, or
// the same CRL again): only the next refresh changes.
func (f *Fetcher) unchanged(s *source, etag, lastMod string) {
	now := f.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.lastErr = 0, nil
	if etag != "" || lastMod != "" {
		s.etag, s.lastModified = etag, lastMod
	}
	if h := s.cur.Load(); h != nil && s.path == "" {
		s.nextFetch = f.refreshAt(h.crl, now)
		if !h.crl.NextUpdate.IsZero() && !now.Before(h.crl.NextUpdate.Add(f.opts.Grace)) {
			// The host still serves the expired CRL: retry like a failure.
			s.nextFetch = now.Add(f.retryDelay(1))
		}
	}
}

// refreshAt is when to fetch after c: the middle of its lifetime (of
// what is left of it, for a CRL got late), at most MaxRefreshInterval
// away, with ±5 % jitter so that servers do not ask together, and not
// sooner than a second from now. A CRL without nextUpdate is fetched every
// MaxRefreshInterval.
func (f *Fetcher) refreshAt(c *crl.CRL, now time.Time) time.Time {
	d := f.opts.MaxRefreshInterval
	if !c.NextUpdate.IsZero() {
		mid := c.ThisUpdate.Add(c.NextUpdate.Sub(c.ThisUpdate) / 2)
		if mid.After(now) {
			d = min(d, mid.Sub(now))
		} else {
			d = min(d, c.NextUpdate.Sub(now)/2)
		}
	}
	d += backoff.Jitter(d / 20)
	floor := time.Second
	if left := c.NextUpdate.Sub(now); !c.NextUpdate.IsZero() && left < 2*floor {
		floor = max(left/2, time.Millisecond)
	}
	return now.Add(max(d, floor))
}

// retryDelay is the delay before retry n (1 for the first after a
// failure), between MinRetryDelay and MaxRetryDelay.
func (f *Fetcher) retryDelay(n int) time.Duration {
	return backoff.Retry(n, f.opts.MinRetryDelay, f.opts.MaxRetryDelay)
}

// failed records a failed attempt: reported, and retried with backoff,
// never later than half the time the held CRL has left. The held CRL, if
// any, stays in force.
func (f *Fetcher) failed(s *source, err error) {
	now := f.now()
	s.mu.Lock()
	s.failures++
	s.lastErr = err
	if s.path == "" {
		delay := f.retryDelay(s.failures)
		if h := s.cur.Load(); h != nil && !h.crl.NextUpdate.IsZero() {
			if left := h.crl.NextUpdate.Sub(now); left > 0 {
				delay = min(delay, max(left/2, f.opts.MinRetryDelay/2))
			}
		}
		s.nextFetch = now.Add(delay)
	}
	s.mu.Unlock()
	f.stats.recordFailure(err, now)
	f.emit(Event{Kind: EventFailed, Source: s.key, Err: err})
	s.markReady() // the first fetch is over (reported first): checks stop waiting for it
}

// expired reports that the held CRL passed its nextUpdate and Grace.
func (f *Fetcher) expired(s *source) {
	s.mu.Lock()
	s.expiryAt = time.Time{}
	h := s.cur.Load()
	s.mu.Unlock()
	if h == nil {
		return
	}
	c := h.crl
	err := newErr(ErrExpired, "nextUpdate "+c.NextUpdate.UTC().Format(time.RFC3339)+" passed without a successful refresh", nil)
	f.emit(Event{Kind: EventExpired, Source: s.key, Issuer: c.Issuer.Subject.String(), Err: err,
		ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate, Number: c.Number, Entries: c.Len()})
}
