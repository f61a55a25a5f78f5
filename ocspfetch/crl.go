package ocspfetch

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/crlfetch"
)

// A certificate that names no OCSP responder but a CRL distribution point
// (Let's Encrypt's since 2025, Google's WR2's) has nothing to staple, but
// its revocation can still be known: a crlfetch.Fetcher fetches, verifies,
// keeps and refreshes its CRL, and this Fetcher reads it for the
// certificate (Check with LeafOnly semantics), once when it first sees the
// certificate and then every MinRefreshInterval. Handshakes never wait
// for it: they are answered at once, unstapled, from the fast path.

// CRLAnswer is what a certificate's CRL says of it
// (CertificateStatus.CRL), for a certificate that names no OCSP responder
// but a CRL distribution point.
type CRLAnswer struct {
	// Status is ocsp.Good or ocsp.Revoked.
	Status int
	// URL is the distribution point of the CRL read ("" when the CRL
	// came from a Source of Options.CRL).
	URL string
	// Number, ThisUpdate and NextUpdate are that CRL's (Number nil
	// without one; NextUpdate zero without one).
	Number                 *big.Int
	ThisUpdate, NextUpdate time.Time
	// CheckedAt is when the Fetcher last read it for the certificate.
	CheckedAt time.Time
}

// crlURLs returns cert's http(s) CRL distribution points: the ones a
// crlfetch.Fetcher follows.
func crlURLs(cert *x509.Certificate) []string {
	var out []string
	for _, u := range cert.CRLDistributionPoints {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			out = append(out, u)
		}
	}
	return out
}

// crlFetcher returns Options.CRL, or the Fetcher's own crlfetch.Fetcher,
// made on first use (so that a Fetcher that never meets such a
// certificate registers no CRL metrics), refused once closed.
func (f *Fetcher) crlFetcher() (*crlfetch.Fetcher, error) {
	if f.opts.CRL != nil {
		return f.opts.CRL, nil
	}
	f.crlMu.Lock()
	defer f.crlMu.Unlock()
	if f.closed.Load() {
		return nil, ErrClosed
	}
	if f.ownCRL == nil {
		o := f.opts
		cf, err := crlfetch.New(crlfetch.Options{
			LeafOnly: true,
			// No handshake waits for it: the check waits for a first CRL
			// about as long as a fetch may take.
			FirstWait:               fetchTimeout / 2,
			ClockSkew:               o.ClockSkew,
			MinRetryDelay:           o.MinRetryDelay,
			MaxRetryDelay:           o.MaxRetryDelay,
			HTTPClient:              o.HTTPClient,
			RefuseInternalAddresses: o.RefuseInternalAddresses,
			StoreTimeout:            o.StoreTimeout,
			Logger:                  o.Logger,
			MeterProvider:           o.MeterProvider,
			Now:                     o.Now,
		})
		if err != nil {
			return nil, newErr(ErrCRLUnavailable, "", err)
		}
		f.ownCRL = cf
	}
	return f.ownCRL, nil
}

// closeCRL closes the Fetcher's own crlfetch.Fetcher, if it made one.
func (f *Fetcher) closeCRL() error {
	f.crlMu.Lock()
	cf := f.ownCRL
	f.crlMu.Unlock()
	if cf == nil {
		return nil
	}
	if err := cf.Close(); err != nil {
		return newErr(ErrUnreachable, "Close: the CRL fetcher", err)
	}
	return nil
}

// updateCRL checks e, a certificate whose revocation comes from its CRL,
// and records the answer. Unless refresh, an answer already known is
// kept. It never changes what handshakes get (nothing to staple).
func (f *Fetcher) updateCRL(ctx context.Context, e *entry, refresh bool) {
	if !refresh {
		if _, ok := e.crlResult(); ok {
			return
		}
	}
	issuer, err := f.issuerOf(ctx, e)
	var cf *crlfetch.Fetcher
	if err == nil {
		cf, err = f.crlFetcher()
	}
	if err == nil {
		err = cf.Check(ctx, [][]*x509.Certificate{{e.cert, issuer}})
	}
	switch {
	case f.closed.Load():
		return // closing: not an answer, nor a failure
	case cf == nil:
		f.crlFailed(e, err) // no issuer (ErrNoIssuer), or no crlfetch.Fetcher
	case err == nil:
		f.crlAnswer(e, heldCRL(cf, e.cert, issuer), ocsp.Good, nil)
	case errors.Is(err, crlfetch.ErrRevoked):
		a := heldCRL(cf, e.cert, issuer)
		f.crlAnswer(e, a, ocsp.Revoked, newErr(ErrRevoked, strings.TrimSpace("listed in its CRL "+a.URL), err))
	case errors.Is(err, crlfetch.ErrFirstWait), ctx.Err() != nil:
		// The first fetch of the CRL is still under way (crlfetch bounds
		// it): look again soon, without reporting anything.
		f.schedule(e, f.now().Add(min(f.opts.MinRetryDelay, f.opts.MinRefreshInterval)))
	default:
		f.crlFailed(e, newErr(ErrCRLUnavailable, "", err))
	}
}

// crlAnswer records what e's CRL says: reported when it is the first
// answer, or comes from a newer CRL (EventFetched, EventRefreshed, and
// EventRevoked for a revoked certificate, as for OCSP answers); the next
// check comes MinRefreshInterval later.
func (f *Fetcher) crlAnswer(e *entry, a CRLAnswer, status int, err error) {
	now := f.now()
	a.Status, a.CheckedAt = status, now
	e.mu.Lock()
	prev, first := e.crlAns, !e.crlSeen
	newer := a.ThisUpdate.After(e.latest)
	changed := prev == nil || prev.Status != status
	if newer {
		e.latest = a.ThisUpdate
	}
	e.crlAns, e.crlSeen = &a, true
	e.failures, e.lastErr = 0, err
	e.mu.Unlock()
	f.schedule(e, now.Add(f.opts.MinRefreshInterval))
	if !first && !newer && !changed {
		return
	}
	kind := EventRefreshed
	if first {
		kind = EventFetched
	}
	ev := Event{Kind: kind, ThisUpdate: a.ThisUpdate, NextUpdate: a.NextUpdate}
	f.emit(e, ev)
	if status == ocsp.Revoked {
		f.stats.revoked.Add(1)
		ev.Kind, ev.Err = EventRevoked, err
		f.emit(e, ev)
	}
}

// crlFailed records a failed check of e's CRL: counted and reported like
// a failed fetch, what was known forgotten (a CRL past its nextUpdate says
// nothing any more), checked again after a backoff no longer than
// MinRefreshInterval (crlfetch retries the host on its own schedule).
func (f *Fetcher) crlFailed(e *entry, err error) *state {
	now := f.now()
	f.stats.recordFailure(err, now)
	e.mu.Lock()
	e.failures++
	e.lastErr, e.crlAns = err, nil
	delay := min(f.retryDelay(e.failures), f.opts.MinRefreshInterval)
	e.mu.Unlock()
	f.schedule(e, now.Add(delay))
	f.emit(e, Event{Kind: EventFailed, Err: err})
	return e.cur.Load()
}

// crlResult is what Staple says of e: ok once e's CRL has been read (or
// could not be), with the error that says why nothing is stapled.
func (e *entry) crlResult() (error, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.crlAns != nil && e.crlAns.Status == ocsp.Good:
		return newErr(ErrNoResponder, "its CRL says good; there is nothing to staple", nil), true
	case e.crlAns != nil, e.failures > 0:
		return e.lastErr, true
	}
	return nil, false
}

// crlStaple is Staple for a certificate whose revocation comes from its
// CRL: it waits, as long as ctx allows, for the first reading.
func (f *Fetcher) crlStaple(ctx context.Context, e *entry) error {
	if err, ok := e.crlResult(); ok {
		return err
	}
	fl := f.startFlight(e, false)
	select {
	case <-fl.answered:
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return ErrClosed
	}
	if fl.err != nil {
		return fl.err
	}
	if err, ok := e.crlResult(); ok {
		return err
	}
	return newErr(ErrCRLUnavailable, "its CRL is still being fetched", nil)
}

// heldCRL describes the CRL cf holds for cert: the newest held from one of
// its distribution points, else from its issuer.
func heldCRL(cf *crlfetch.Fetcher, cert, issuer *x509.Certificate) CRLAnswer {
	urls := crlURLs(cert)
	var best *crlfetch.CRLStatus
	bestDP := false
	all := cf.CRLs()
	for i := range all {
		st := &all[i]
		dp := slices.Contains(urls, st.Source)
		if !st.Held || !dp && st.Issuer != issuer.Subject.String() {
			continue
		}
		if best == nil || dp && !bestDP || dp == bestDP && st.ThisUpdate.After(best.ThisUpdate) {
			best, bestDP = st, dp
		}
	}
	if best == nil {
		return CRLAnswer{}
	}
	a := CRLAnswer{Number: best.Number, ThisUpdate: best.ThisUpdate, NextUpdate: best.NextUpdate}
	if bestDP {
		a.URL = best.Source
	}
	return a
}
