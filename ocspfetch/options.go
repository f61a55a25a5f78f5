package ocspfetch

import (
	"crypto"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultHandshakeBudget = 2 * time.Second
	DefaultMaxResponseSize = 64 << 10
	DefaultClockSkew       = 5 * time.Minute

	// NoNextUpdateLifetime bounds a response without NextUpdate: it is
	// treated as expiring this long after its ThisUpdate. RFC 5019 reads a
	// missing NextUpdate as "newer information is always available", which
	// gives a stapler no expiry at all; an hour keeps such a staple fresh
	// without asking the responder on every handshake.
	NoNextUpdateLifetime = time.Hour

	// MaxRedirects is how many HTTP redirects a responder or caIssuers
	// fetch follows before failing with ErrTooManyRedirects.
	MaxRedirects = 3

	// MinBackoff and MaxBackoff bound the retry delay after a failed
	// fetch: it starts at MinBackoff and doubles up to MaxBackoff.
	MinBackoff = time.Minute
	MaxBackoff = time.Hour

	// fetchTimeout bounds one whole update (caIssuers, OCSP exchange,
	// Store) in the background; the handshake never waits that long.
	fetchTimeout = 30 * time.Second
)

// Options configure a Fetcher. The zero value is ready to use.
type Options struct {
	// HTTPClient fetches responses and issuers. Nil means a client of the
	// Fetcher's own with connect, header and overall timeouts, no cookie
	// jar, no proxy, and at most MaxRedirects redirects. A client given here
	// is used as is, except that a nil CheckRedirect is replaced by the
	// bounded, http(s)-only one.
	HTTPClient *http.Client

	// Store keeps verified responses across Fetchers and restarts. Nil
	// means NewMemoryStore().
	Store Store

	// HandshakeBudget is how long OCSPRequest may hold a handshake that
	// has no cached answer. Zero means DefaultHandshakeBudget; negative
	// means never wait (the first handshake of each certificate goes
	// unstapled).
	HandshakeBudget time.Duration

	// MaxResponseSize bounds a response (and a caIssuers certificate)
	// body; reading stops one byte past it. Zero means
	// DefaultMaxResponseSize.
	MaxResponseSize int64

	// ClockSkew is the tolerance for a ThisUpdate in the future, and the
	// margin (at most a tenth of the response's lifetime) by which a staple
	// is retired before its NextUpdate. Zero means DefaultClockSkew.
	ClockSkew time.Duration

	// StapleRevoked staples verified Revoked answers so that clients see
	// the revocation. By default they are reported, not stapled.
	StapleRevoked bool

	// FailClosed makes OCSPRequest fail the handshake (cb(err, nil)) when
	// there is no valid staple for a certificate that has a responder. By
	// default the handshake goes on without a staple.
	FailClosed bool

	// RefuseInternalAddresses refuses responder and caIssuers addresses
	// that are loopback, link-local, private (RFC 1918, RFC 4193),
	// carrier-grade NAT, unspecified or multicast, so that a certificate
	// cannot point the server at its own network. Off by default, because
	// test PKIs and demos run their responders on loopback. With the
	// default HTTPClient every dialed address is checked (after DNS); with a
	// custom one only IP literals in URLs are.
	RefuseInternalAddresses bool

	// CertIDHash is the hash of the CertID in requests: crypto.SHA1 (the
	// default, what every responder understands) or crypto.SHA256, SHA384,
	// SHA512.
	CertIDHash crypto.Hash

	// OnEvent, if set, receives every Event. It runs on the goroutine that
	// produced the event (a background fetch, or a handshake that had no
	// cached answer) and must not block. It is never called on the cache
	// hit path.
	OnEvent func(Event)

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Logger receives failures (Warn), Must-Staple certificates without a
	// staple (Error) and fetches (Debug). Nil means slog.Default().
	Logger *slog.Logger

	// manualRefresh keeps the background goroutine from starting
	// refreshes, so that tests drive them with refreshDue and a fake clock
	// without racing it.
	manualRefresh bool
}

func (o *Options) setDefaults() error {
	switch {
	case o.MaxResponseSize < 0:
		return errors.New("ocspfetch: negative MaxResponseSize")
	case o.ClockSkew < 0:
		return errors.New("ocspfetch: negative ClockSkew")
	}
	if o.HandshakeBudget == 0 {
		o.HandshakeBudget = DefaultHandshakeBudget
	}
	if o.MaxResponseSize == 0 {
		o.MaxResponseSize = DefaultMaxResponseSize
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = DefaultClockSkew
	}
	switch o.CertIDHash {
	case 0:
		o.CertIDHash = crypto.SHA1
	case crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return errors.New("ocspfetch: CertIDHash must be SHA1, SHA256, SHA384 or SHA512")
	}
	if o.Store == nil {
		o.Store = NewMemoryStore()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
