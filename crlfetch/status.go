package crlfetch

import (
	"cmp"
	"maps"
	"math/big"
	"slices"
	"time"
)

// CRLStatus is what a Fetcher knows of one CRL source: what a status
// page's CRL table shows, and what a health check may want ("is every
// CRL in date, and for how long yet?").
type CRLStatus struct {
	// Source is the CRL's URL (a distribution point, or a Source) or file.
	Source string
	// Explicit reports a Source given in Options; the others are
	// distribution points of certificates checked.
	Explicit bool
	// Issuer is the subject of the CA whose CRL is held, or, before one
	// is, of the CA it is expected from.
	Issuer string
	// Held reports whether a verified CRL is held; the fields below
	// describe it.
	Held bool
	// Number is its CRL number (nil without one).
	Number *big.Int
	// ThisUpdate and NextUpdate are its own (NextUpdate zero without one).
	ThisUpdate, NextUpdate time.Time
	// Entries is how many certificates it lists; Size its DER bytes.
	Entries, Size int
	// Origin is where it came from: "network", "store" or "file"; Since
	// when it has been in force.
	Origin string
	Since  time.Time
	// Expired reports it past its nextUpdate and Grace: the certificates
	// it speaks for are refused with CRL_HAS_EXPIRED.
	Expired bool
	// LastFetch is the last attempt (URLs), NextFetch the next one (a
	// refresh, or a retry after a failure).
	LastFetch, NextFetch time.Time
	// LastError is the last failure since the CRL held was got (a host
	// outage while the CRL held is still used, a replay refused), nil
	// after a success. It wraps a sentinel (ErrUnreachable, ErrSignature,
	// ErrOlderCRL, …).
	LastError error
	// Failures counts the failures since the last success.
	Failures int
}

// CRLs returns the status of every CRL source the Fetcher has (its
// Sources, and the distribution points of the certificates it checked,
// until unused for a day), sorted by Source. It never touches the
// network.
func (f *Fetcher) CRLs() []CRLStatus {
	now := f.now()
	srcs := f.sourceList()
	out := make([]CRLStatus, 0, len(srcs))
	for _, s := range srcs {
		st := CRLStatus{Source: s.key, Explicit: s.explicit}
		s.mu.Lock()
		if len(s.issuers) > 0 {
			st.Issuer = s.issuers[0].Subject.String()
		}
		st.LastFetch, st.NextFetch = s.lastFetch, s.nextFetch
		st.LastError, st.Failures = s.lastErr, s.failures
		s.mu.Unlock()
		if h := s.cur.Load(); h != nil {
			c := h.crl
			st.Held, st.Issuer = true, c.Issuer.Subject.String()
			st.Number, st.ThisUpdate, st.NextUpdate = c.Number, c.ThisUpdate, c.NextUpdate
			st.Entries, st.Size, st.Origin, st.Since = c.Len(), h.size, h.origin, h.at
			st.Expired = !c.NextUpdate.IsZero() && now.After(c.NextUpdate.Add(f.opts.Grace))
		}
		if s.path != "" {
			st.NextFetch = time.Time{} // polled, not fetched
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b CRLStatus) int { return cmp.Compare(a.Source, b.Source) })
	return out
}

// sourceList returns the Fetcher's sources.
func (f *Fetcher) sourceList() []*source {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.sources))
}
