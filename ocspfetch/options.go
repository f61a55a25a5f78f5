package ocspfetch

import (
	"cmp"
	"crypto"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/tlsemit/tlsemit/crlfetch"
)

// Defaults for the zero values of Options.
const (
	DefaultHandshakeBudget = 2 * time.Second
	DefaultMaxResponseSize = 64 << 10
	DefaultClockSkew       = 5 * time.Minute

	// DefaultMinRetryDelay and DefaultMaxRetryDelay bound the retries
	// after a failed fetch: the first within two seconds, so that a blip
	// costs seconds, doubling up to ten minutes, so that a responder that
	// stays down is not hammered.
	DefaultMinRetryDelay = 2 * time.Second
	DefaultMaxRetryDelay = 10 * time.Minute

	// DefaultMinRefreshInterval is the least time between two requests for
	// one certificate after a success, whatever the responses' lifetime.
	DefaultMinRefreshInterval = time.Minute

	// DefaultStoreTimeout bounds each Store call, well inside the default
	// HandshakeBudget.
	DefaultStoreTimeout = 500 * time.Millisecond

	// NoNextUpdateLifetime bounds a response without NextUpdate: it is
	// treated as expiring this long after its ThisUpdate. RFC 5019 reads a
	// missing NextUpdate as "newer information is always available", which
	// gives a stapler no expiry at all; an hour keeps such a staple fresh
	// without asking the responder on every handshake.
	NoNextUpdateLifetime = time.Hour

	// MaxRedirects is how many HTTP redirects a responder or caIssuers
	// fetch follows (each to the same scheme and host) before failing with
	// ErrTooManyRedirects.
	MaxRedirects = 3

	// fetchTimeout bounds one whole update (Store, caIssuers, OCSP
	// exchange, waiting for a fleet member) in the background; the
	// handshake never waits that long.
	fetchTimeout = 30 * time.Second
)

// Options configure a Fetcher. The zero value is ready to use.
type Options struct {
	// HTTPClient fetches responses and issuers. Nil means a client of the
	// Fetcher's own with connect, header and overall timeouts, no cookie
	// jar and no proxy, whose idle connections Close closes. A client given
	// here is used as is, except for redirects: the Fetcher's rules (at
	// most MaxRedirects, same scheme and host, RefuseInternalAddresses)
	// apply first, then the client's own CheckRedirect, if any.
	HTTPClient *http.Client

	// Store keeps verified responses across Fetchers and restarts; the
	// Fetcher trusts it for nothing (see Store). Nil means NewMemoryStore().
	Store Store

	// StoreTimeout bounds each Store call. A call that has not returned by
	// then is abandoned (reported, and the fetch goes on without it).
	// Zero means DefaultStoreTimeout.
	StoreTimeout time.Duration

	// HandshakeBudget is how long OCSPRequest may hold a handshake that
	// has no cached answer. Zero means DefaultHandshakeBudget; negative
	// means never wait (the first handshake of each certificate goes
	// unstapled).
	HandshakeBudget time.Duration

	// MaxResponseSize bounds a response (from a responder or a Store) and
	// a caIssuers certificate; reading stops one byte past it. Zero means
	// DefaultMaxResponseSize.
	MaxResponseSize int64

	// ClockSkew is the tolerance for a ThisUpdate in the future, and the
	// margin (at most a tenth of the response's lifetime) by which a staple
	// is retired before its NextUpdate. Zero means DefaultClockSkew.
	ClockSkew time.Duration

	// MinRetryDelay is the delay before the first retry after a failed
	// fetch; it doubles with each further failure up to MaxRetryDelay.
	// Each delay is drawn at random from its upper half (jitter), so that
	// servers that failed together do not retry together. Zeros mean
	// DefaultMinRetryDelay and DefaultMaxRetryDelay.
	MinRetryDelay, MaxRetryDelay time.Duration

	// MinRefreshInterval is the least time between two requests for one
	// certificate after a successful one: a refresh is due at the midpoint
	// of the response's validity, but never sooner than this. Responses
	// that live less than it are then stapled only part of the time: lower
	// it for such a responder. Zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

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
	// hit path. A panic in it is recovered and counted in Stats.Panics.
	OnEvent func(Event)

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Logger receives failures (Warn), Must-Staple certificates without a
	// staple (Error) and fetches (Debug), each of which is an Event too.
	// Nil means silent.
	Logger *slog.Logger

	// CRL learns the revocation of the certificates that name no OCSP
	// responder but a CRL distribution point (every Let's Encrypt
	// certificate since 2025): nothing is stapled for them, but their
	// CRL says whether they are revoked (Certificates, EventRevoked). A
	// certificate that names a responder is stapled, and its CRL is not
	// read. Nil means a crlfetch.Fetcher of the Fetcher's own, made when
	// the first such certificate comes, with LeafOnly and this Fetcher's
	// HTTPClient, RefuseInternalAddresses, ClockSkew, retry delays,
	// Logger, MeterProvider and Now, no Store, and closed by Close. Give
	// one, made with LeafOnly (a served certificate's own revocation is
	// what is asked), to keep its CRLs in a crlfetch Store across
	// restarts, or to show them on the status page; it stays yours to
	// close. With its FailOpen, an unknown revocation reads as good.
	CRL *crlfetch.Fetcher

	// MeterProvider receives the Fetcher's OpenTelemetry metrics
	// (responder requests by outcome and their duration, answers by
	// staple status, fetch failures by reason, each certificate's staple
	// age and time left: docs/metrics.md). Nil means the global provider
	// (otel.GetMeterProvider), a no-op until the application installs one.
	MeterProvider metric.MeterProvider
}

func (o *Options) setDefaults() error {
	switch {
	case o.MaxResponseSize < 0:
		return errors.New("ocspfetch: negative MaxResponseSize")
	case o.ClockSkew < 0:
		return errors.New("ocspfetch: negative ClockSkew")
	case o.StoreTimeout < 0, o.MinRetryDelay < 0, o.MaxRetryDelay < 0, o.MinRefreshInterval < 0:
		return errors.New("ocspfetch: negative StoreTimeout, MinRetryDelay, MaxRetryDelay or MinRefreshInterval")
	}
	o.HandshakeBudget = cmp.Or(o.HandshakeBudget, DefaultHandshakeBudget)
	o.ClockSkew = cmp.Or(o.ClockSkew, DefaultClockSkew)
	o.StoreTimeout = cmp.Or(o.StoreTimeout, DefaultStoreTimeout)
	o.MinRetryDelay = cmp.Or(o.MinRetryDelay, DefaultMinRetryDelay)
	o.MaxRetryDelay = cmp.Or(o.MaxRetryDelay, max(DefaultMaxRetryDelay, o.MinRetryDelay))
	o.MinRefreshInterval = cmp.Or(o.MinRefreshInterval, DefaultMinRefreshInterval)
	if o.MaxRetryDelay < o.MinRetryDelay {
		return errors.New("ocspfetch: MaxRetryDelay below MinRetryDelay")
	}
	o.MaxResponseSize = cmp.Or(o.MaxResponseSize, DefaultMaxResponseSize)
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
	return nil
}
