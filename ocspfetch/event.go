package ocspfetch

import (
	"time"
)

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// EventFetched: the first verified response for a certificate came
	// from its responder.
	EventFetched EventKind = iota + 1
	// EventRefreshed: a later verified response replaced the cached one.
	EventRefreshed
	// EventLoaded: a verified response was taken from the Store, without
	// asking the responder.
	EventLoaded
	// EventFailed: a fetch or its verification failed; Err says why. A
	// cached valid staple, if any, is still served.
	EventFailed
	// EventRevoked: the responder says the certificate is revoked.
	EventRevoked
	// EventUnknown: the responder does not know the certificate.
	EventUnknown
	// EventNoResponder: the certificate names no http(s) OCSP responder;
	// it is never stapled.
	EventNoResponder
	// EventBudgetExceeded: a handshake went on without a staple because
	// the answer was later than HandshakeBudget.
	EventBudgetExceeded
	// EventExpired: the cached staple reached its end of service without a
	// successful refresh and is no longer stapled.
	EventExpired
	// EventMustStapleMissing: a Must-Staple certificate has no valid staple
	// to serve; clients that honour Must-Staple will refuse it. Also logged
	// at Error level.
	EventMustStapleMissing
	// EventStoreError: the Store failed to load or save; Err says why.
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
	// Key is the CertID cache key ("" until the issuer is known).
	Key string
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
	// Hits counts OCSPRequest calls answered from memory without waiting.
	Hits int64
	// Misses counts OCSPRequest calls with no usable cached answer.
	Misses int64
	// Requests counts HTTP requests sent (OCSP and caIssuers).
	Requests int64
	// Fetched counts verified responses obtained from responders.
	Fetched int64
	// Loaded counts verified responses taken from the Store.
	Loaded int64
	// Failures counts failed fetches; FailuresByReason splits them by
	// sentinel error (ErrUnreachable, ErrExpired, …).
	Failures         int64
	FailuresByReason map[error]int64
	// Revoked and Unknown count verified answers with those statuses.
	Revoked, Unknown int64
	// BudgetExceeded counts handshakes that went on unstapled because the
	// answer was late.
	BudgetExceeded int64
	// MustStapleMissing counts reports of a Must-Staple certificate
	// without a valid staple.
	MustStapleMissing int64
	// Certificates is how many certificates the Fetcher tracks.
	Certificates int
	// LastError is the latest failure, and LastErrorAt when it happened.
	LastError   error
	LastErrorAt time.Time
}
