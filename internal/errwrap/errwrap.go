// Package errwrap is how tlsemit's packages report a failure: an error
// that wraps one of the package's sentinels, with detail and a cause,
// both visible to errors.Is; and the naming of a failure by the sentinel
// it wraps (Stats, metrics' error.type).
package errwrap

import "errors"

// New returns an error whose text is the sentinel's, then detail, then
// cause's (each after ": ", when there is one), and that unwraps to the
// sentinel and the cause.
func New(sentinel error, detail string, cause error) error {
	return &wrapped{sentinel: sentinel, detail: detail, cause: cause}
}

type wrapped struct {
	sentinel error
	detail   string
	cause    error
}

func (e *wrapped) Error() string {
	s := e.sentinel.Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *wrapped) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

// Reason is a sentinel and its name as metrics' error.type spells it.
type Reason struct {
	Err  error
	Name string
}

// Reasons are a package's sentinels in the order Of tries them (an
// error may wrap several: the first listed names it); the last is the
// catch-all.
type Reasons []Reason

// Of returns the first reason err wraps, the last one when it wraps none
// (a failure nobody anticipated).
func (rs Reasons) Of(err error) Reason {
	for _, r := range rs {
		if errors.Is(err, r.Err) {
			return r
		}
	}
	return rs[len(rs)-1]
}
