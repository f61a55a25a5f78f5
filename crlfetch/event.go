package crlfetch

import (
	"math/big"
	"time"
)

// EventKind says what happened.
type EventKind int

// Event kinds.
const (
	// EventFetched: a new verified CRL from a host or a file is now used.
	EventFetched EventKind = iota + 1
	// EventLoaded: a verified CRL from the Store is now used (a restart).
	EventLoaded
	// EventFailed: a fetch, or the verification of what it got, failed;
	// Err says why. The CRL held before, if any, is still used.
	EventFailed
	// EventExpired: the CRL held passed its nextUpdate (and Grace)
	// without a successful refresh: the certificates it speaks for are
	// refused with CRL_HAS_EXPIRED until one succeeds.
	EventExpired
	// EventRefused: a check refused a chain; Err is the refusal, Code its
	// Node code.
	EventRefused
	// EventFailedOpen: with Options.FailOpen, a chain whose revocation
	// could not be known passed; Err is what would have refused it.
	EventFailedOpen
	// EventStoreError: the Store failed, timed out or panicked, or held a
	// CRL that was refused; Err says which.
	EventStoreError
)

var kindNames = [...]string{
	EventFetched:    "fetched",
	EventLoaded:     "loaded",
	EventFailed:     "failed",
	EventExpired:    "expired",
	EventRefused:    "refused",
	EventFailedOpen: "failed-open",
	EventStoreError: "store-error",
}

// String returns the kind's name, such as "failed-open".
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "EventKind(?)"
}

// Event reports one thing the Fetcher did or saw.
type Event struct {
	Kind EventKind
	// Source is the CRL's URL or file ("" for a check).
	Source string
	// Issuer is the subject of the CA whose CRL it is (for a check, of the
	// certificate refused).
	Issuer string
	// Err is the failure, wrapping a sentinel; nil for EventFetched and
	// EventLoaded.
	Err error
	// Code is Node's code of a refusal (EventRefused, EventFailedOpen).
	Code string
	// ThisUpdate, NextUpdate, Number and Entries describe the CRL, when
	// there is one.
	ThisUpdate, NextUpdate time.Time
	Number                 *big.Int
	Entries                int
	// At is when it happened, by Options.Now.
	At time.Time
}

// emit sends ev to OnEvent and the Logger, containing their panics.
func (f *Fetcher) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = f.now()
	}
	if log := f.opts.Logger; log != nil {
		f.guard.Contain("Logger", func() {
			args := []any{"kind", ev.Kind.String()}
			if ev.Source != "" {
				args = append(args, "source", ev.Source)
			}
			if ev.Issuer != "" {
				args = append(args, "issuer", ev.Issuer)
			}
			if ev.Code != "" {
				args = append(args, "code", ev.Code)
			}
			if ev.Err != nil {
				args = append(args, "err", ev.Err.Error())
			}
			switch ev.Kind {
			case EventFailed, EventExpired, EventStoreError, EventFailedOpen:
				log.Warn("crlfetch: "+ev.Kind.String(), args...)
			case EventFetched, EventLoaded:
				log.Info("crlfetch: "+ev.Kind.String(), append(args, "number", ev.Number, "entries", ev.Entries, "next_update", ev.NextUpdate)...)
			default:
				log.Debug("crlfetch: "+ev.Kind.String(), args...)
			}
		})
	}
	if f.opts.OnEvent != nil {
		f.guard.Contain("OnEvent", func() { f.opts.OnEvent(ev) })
	}
}
