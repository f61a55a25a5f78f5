package ocspfetch

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// EventFetched: the first verified response for a certificate came
	// from its responder (or, for a certificate whose revocation comes
	// from its CRL, the first answer from its CRL; Source says which).
	EventFetched EventKind = iota + 1
	// EventRefreshed: a later verified response replaced the cached one
	// (or a newer CRL, or a changed answer, for Source "crl").
	EventRefreshed
	// EventLoaded: a verified response was taken from the Store, without
	// asking the responder.
	EventLoaded
	// EventFailed: a fetch or its verification failed; Err says why. A
	// cached valid staple, if any, is still served.
	EventFailed
	// EventRevoked: the responder says the certificate is revoked, or,
	// for Source "crl", its CRL lists it; Err wraps ErrRevoked.
	EventRevoked
	// EventUnknown: the responder does not know the certificate.
	EventUnknown
	// EventNoResponder: the certificate names no http(s) OCSP responder;
	// it is never stapled. If it names a CRL distribution point, its
	// revocation is learned from its CRL (events with Source "crl").
	EventNoResponder
	// EventBudgetExceeded: a handshake went on without a staple because
	// the answer was later than HandshakeBudget.
	EventBudgetExceeded
	// EventExpired: the cached staple reached its end of service without a
	// successful refresh and is no longer stapled.
	EventExpired
	// EventMustStapleMissing: a Must-Staple certificate has no valid staple
	// to serve; clients that honour Must-Staple will refuse it. Also logged
	// at Error level when there is a Logger.
	EventMustStapleMissing
	// EventStoreError: the Store failed, timed out or panicked (ErrStore,
	// ErrPanic), or held a response that was refused (corrupt, foreign,
	// expired, too large: the verification's sentinel). Err says which.
	EventStoreError
)

var kindNames = [...]string{
	EventFetched:           "fetched",
	EventRefreshed:         "refreshed",
	EventLoaded:            "loaded",
	EventFailed:            "failed",
	EventRevoked:           "revoked",
	EventUnknown:           "unknown",
	EventNoResponder:       "no-responder",
	EventBudgetExceeded:    "budget-exceeded",
	EventExpired:           "expired",
	EventMustStapleMissing: "must-staple-missing",
	EventStoreError:        "store-error",
}

// String returns the kind's name, such as "must-staple-missing".
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "EventKind(?)"
}

// Event reports one thing the Fetcher did or saw, for one certificate.
type Event struct {
	Kind EventKind
	// Serial is the certificate's serial number in upper-case hex.
	Serial string
	// Subject is the certificate's subject.
	Subject string
	// Key is the CertID cache key ("" until the issuer is known, and for
	// a certificate without a responder).
	Key string
	// Source is where the certificate's revocation is learned: "ocsp",
	// "crl" (see Options.CRL) or "" (neither), as in CertificateStatus.
	Source string
	// Err is the reason for EventFailed, EventStoreError,
	// EventBudgetExceeded, EventExpired and EventMustStapleMissing, and
	// ErrRevoked/ErrUnknownStatus for those kinds. It wraps a sentinel.
	Err error
	// ThisUpdate and NextUpdate are the response's, when there is one.
	// NextUpdate is the effective one: ThisUpdate+NoNextUpdateLifetime for
	// a response without it.
	ThisUpdate, NextUpdate time.Time
	// At is when it happened, by Options.Now.
	At time.Time
}

// Stats are counters since New. Reasons are keyed by sentinel error.
type Stats struct {
	// Hits, Misses and Unstapled split the OCSPRequest calls: Hits were
	// stapled from memory at once; Misses had no usable answer and waited
	// for a fetch (stapled or not); Unstapled were answered at once
	// without a staple (no responder, a failure within its retry delay, a
	// Revoked or Unknown answer, a closed Fetcher).
	Hits, Misses, Unstapled int64
	// Requests counts HTTP requests sent (OCSP and caIssuers).
	Requests int64
	// Fetched counts verified responses obtained from responders.
	Fetched int64
	// Loaded counts verified responses taken from the Store.
	Loaded int64
	// Failures counts failed fetches (and failed readings of a CRL,
	// ErrCRLUnavailable); FailuresByReason splits them by sentinel error
	// (ErrUnreachable, ErrExpired, …).
	Failures         int64
	FailuresByReason map[error]int64
	// Revoked and Unknown count verified answers with those statuses
	// (Revoked also counts the CRLs that list a certificate: the first,
	// and each newer one).
	Revoked, Unknown int64
	// BudgetExceeded counts handshakes that went on unstapled because the
	// answer was late.
	BudgetExceeded int64
	// MustStapleMissing counts reports of a Must-Staple certificate
	// without a valid staple.
	MustStapleMissing int64
	// Panics counts panics recovered in user code: OnEvent, the Logger's
	// handler, the Store, the HTTP client's transport.
	Panics int64
	// Certificates is how many certificates the Fetcher tracks.
	Certificates int
	// LastError is the latest failure, and LastErrorAt when it happened.
	LastError   error
	LastErrorAt time.Time
}

// Stats returns a snapshot of the counters.
func (f *Fetcher) Stats() Stats {
	s := &f.stats
	out := Stats{
		Hits: s.hits.Load() + s.revokedHits.Load(), Misses: s.misses.Load(), Unstapled: s.unstapled.Load(), Requests: s.requests.Load(),
		Fetched: s.fetched.Load(), Loaded: s.loaded.Load(), Failures: s.failures.Load(),
		Revoked: s.revoked.Load(), Unknown: s.unknown.Load(), BudgetExceeded: s.budget.Load(),
		MustStapleMissing: s.mustStaple.Load(), Panics: s.panics.Load(), Certificates: int(f.certs.n.Load()),
		FailuresByReason: make(map[error]int64),
	}
	s.mu.Lock()
	for k, v := range s.byReason {
		out.FailuresByReason[k] = v
	}
	out.LastError, out.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	return out
}

// counters back Stats and the metrics. hits and unstapled sit alone on
// their cache lines: they are the ones written on the handshake fast path.
// A handshake's answer is counted once: hits (a Good staple, or any
// staple that is not Revoked), revokedHits (a Revoked one, with
// StapleRevoked), unstapled, or misses and then one of missGood,
// missRevoked, missNone.
type counters struct {
	hits      atomic.Int64
	_         [56]byte
	unstapled atomic.Int64
	_         [56]byte

	revokedHits, missGood, missRevoked, missNone atomic.Int64
	misses, requests, fetched, loaded, failures  atomic.Int64
	revoked, unknown, budget, mustStaple, panics atomic.Int64

	mu        sync.Mutex
	byReason  map[error]int64
	lastErr   error
	lastErrAt time.Time
}

// recordFailure counts a failed fetch, by reason, as the latest.
func (c *counters) recordFailure(err error, now time.Time) {
	c.failures.Add(1)
	c.mu.Lock()
	c.byReason[classify(err)]++
	c.lastErr, c.lastErrAt = err, now
	c.mu.Unlock()
}

// emit fills in e's identity and delivers ev to the logger, if any, and
// OnEvent, containing their panics.
func (f *Fetcher) emit(e *entry, ev Event) {
	ev.Serial, ev.Subject, ev.Source = e.serial, e.subject, e.source()
	e.mu.Lock()
	ev.Key = e.key
	e.mu.Unlock()
	if ev.At.IsZero() {
		ev.At = f.now()
	}
	if log := f.opts.Logger; log != nil {
		f.guard.Contain("Logger", func() {
			args := []any{"kind", ev.Kind.String(), "serial", ev.Serial, "subject", ev.Subject}
			if ev.Err != nil {
				args = append(args, "err", ev.Err.Error())
			}
			switch ev.Kind {
			case EventMustStapleMissing:
				log.Error("ocspfetch: Must-Staple certificate has no valid OCSP staple", args...)
			case EventFailed, EventExpired, EventRevoked, EventStoreError, EventUnknown:
				log.Warn("ocspfetch: "+ev.Kind.String(), args...)
			default:
				log.Debug("ocspfetch: "+ev.Kind.String(), args...)
			}
		})
	}
	if f.opts.OnEvent != nil {
		f.guard.Contain("OnEvent", func() { f.opts.OnEvent(ev) })
	}
}

func (f *Fetcher) mustStapleMissing(e *entry, err error) {
	f.stats.mustStaple.Add(1)
	f.emit(e, Event{Kind: EventMustStapleMissing, Err: err})
}
