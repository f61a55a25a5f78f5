package crlfetch

import (
	"cmp"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults for the zero values of Options.
const (
	// DefaultFirstWait bounds how long a handshake waits for the first
	// CRL of an issuer, after which it is refused with UNABLE_TO_GET_CRL
	// (the fetch goes on for the next handshake).
	DefaultFirstWait = 2 * time.Second

	// DefaultMaxSize bounds a CRL (after decompression): twice the 34 MB
	// of a 1,000,000-entry CRL, the size of the largest public ones.
	DefaultMaxSize = 64 << 20

	// DefaultFetchTimeout bounds one fetch, body included (34 MB at
	// 1 MB/s is 34 s).
	DefaultFetchTimeout = time.Minute

	// DefaultClockSkew is how far in the future a CRL's thisUpdate may be
	// (the CA's clock ahead of ours) before it is refused as not yet
	// valid.
	DefaultClockSkew = 5 * time.Minute

	// DefaultMinRetryDelay and DefaultMaxRetryDelay bound the retries
	// after a failed fetch: the first within two seconds, doubling up to
	// ten minutes, and never fewer than a few before a held CRL's
	// nextUpdate.
	DefaultMinRetryDelay = 2 * time.Second
	DefaultMaxRetryDelay = 10 * time.Minute

	// DefaultMaxRefreshInterval is the longest time between two fetches
	// of a CRL that has not expired: CAs publish new CRLs well before the
	// nextUpdate of the last one (Let's Encrypt every few hours for
	// CRLs valid days). Refreshes use the host's ETag and Last-Modified,
	// so an unchanged CRL is not downloaded again.
	DefaultMaxRefreshInterval = time.Hour

	// DefaultFilePollInterval is how often a file Source is looked at
	// (its size, modification time and, when they change, its contents).
	DefaultFilePollInterval = time.Second

	// DefaultStoreTimeout bounds each Store call: a Store holds CRLs of
	// tens of megabytes.
	DefaultStoreTimeout = 5 * time.Second

	// MaxRedirects is how many HTTP redirects a fetch follows, each
	// within the CRL URL's scheme, host and port.
	MaxRedirects = 3
)

// Source is a CRL given explicitly, for a CA whose certificates name no
// CRL distribution point: a URL or a file, and the CA that issues it.
type Source struct {
	// URL is an http or https URL, fetched and refreshed as distribution
	// points are. A certificate's distribution point with the same URL
	// shares its fetch.
	URL string
	// File is a path to a DER or PEM CRL, read at New and read again
	// whenever it changes (Node's fs.watch and setSecureContext, done for
	// you). One of URL and File.
	File string
	// Issuer is the CA certificate whose CRL it is; the CRL is verified
	// with its key. Required. It is also how the Fetcher goes on from an
	// intermediate CA that ends a verified chain (one listed in
	// ClientCAs) to the root that issued it, as Node does.
	Issuer *x509.Certificate
}

// Options configure a Fetcher. The zero value is ready to use: CRLs come
// from the client certificates' CRL distribution points.
type Options struct {
	// Sources are CRLs given explicitly, besides the distribution points
	// of the certificates checked.
	Sources []Source

	// FirstWait bounds how long a check waits for an issuer's first CRL:
	// then it fails with UNABLE_TO_GET_CRL, and the fetch goes on. Once a
	// CRL is held no check waits for the network again. Zero means
	// DefaultFirstWait; negative means never wait.
	FirstWait time.Duration

	// FailOpen lets a certificate pass when its revocation cannot be known
	// (no CRL, an expired one, or one that does not verify): Node fails
	// closed, and so does the Fetcher by default. A certificate a CRL
	// lists is refused either way. Such passes are counted, and reported
	// as EventFailedOpen.
	FailOpen bool

	// Grace is how long past its nextUpdate a CRL is still used, while
	// refreshes keep failing; then certificates it speaks for are refused
	// with CRL_HAS_EXPIRED. Zero means none, as in Node.
	Grace time.Duration

	// ClockSkew is how far in the future a CRL's thisUpdate may be. Zero
	// means DefaultClockSkew; a negative value means none.
	ClockSkew time.Duration

	// LeafOnly checks the client's certificate alone (OpenSSL's
	// X509_V_FLAG_CRL_CHECK without CRL_CHECK_ALL). By default every
	// certificate of the chain is checked, the trust anchor against its
	// own CRL too, as Node does: each CA in the chain needs a CRL, and an
	// intermediate CA that ends the chain needs its issuer among the
	// Sources' Issuers (the package documentation says why).
	LeafOnly bool

	// MaxSize bounds a CRL, from a host (compressed and decompressed), a
	// file or the Store. Zero means DefaultMaxSize.
	MaxSize int64

	// FetchTimeout bounds one fetch. Zero means DefaultFetchTimeout.
	FetchTimeout time.Duration

	// MinRetryDelay is the delay before the first retry after a failed
	// fetch; it doubles with each further failure up to MaxRetryDelay,
	// each delay drawn from its upper half (jitter). While a CRL is held,
	// a retry is never later than half the time left to its nextUpdate.
	// Zeros mean the defaults.
	MinRetryDelay, MaxRetryDelay time.Duration

	// MaxRefreshInterval bounds the time between two fetches of a CRL.
	// A CRL is refreshed at the middle of its thisUpdate..nextUpdate (of
	// what is left of it, for one obtained late), with jitter, or after
	// MaxRefreshInterval if that is sooner. Zero means
	// DefaultMaxRefreshInterval.
	MaxRefreshInterval time.Duration

	// FilePollInterval is how often file Sources are looked at. Zero means
	// DefaultFilePollInterval.
	FilePollInterval time.Duration

	// HTTPClient fetches CRLs. Nil means a client of the Fetcher's own
	// (bounded connect and header times, no proxy, no cookies) whose idle
	// connections Close closes. A client given here is used as is, except
	// for redirects: at most MaxRedirects, within the URL's origin, checked
	// first, then its own CheckRedirect.
	HTTPClient *http.Client

	// RefuseInternalAddresses refuses CRL URLs (distribution points and
	// redirects) on loopback, private, link-local, carrier-grade NAT,
	// unspecified or multicast addresses, so that a certificate cannot
	// point the server at its own network. Off by default: test PKIs and
	// private CAs serve CRLs on such addresses.
	RefuseInternalAddresses bool

	// Store keeps the last verified CRL of every URL across restarts, so
	// that a restart during an outage of the CRL host keeps enforcing.
	// The Fetcher trusts it for nothing: what it returns is verified
	// again. Nil means none (NewDirStore makes one).
	Store Store

	// StoreTimeout bounds each Store call. Zero means DefaultStoreTimeout.
	StoreTimeout time.Duration

	// OnEvent, if set, receives every Event. It runs on the goroutine
	// that produced the event (a fetch, or a handshake for EventRefused and
	// EventFailedOpen) and must not block. A panic in it is recovered.
	OnEvent func(Event)

	// Logger receives fetch failures and expiries (Warn), new CRLs (Info)
	// and refused handshakes (Debug), each of which is an Event too. Nil
	// means silent.
	Logger *slog.Logger

	// MeterProvider receives the Fetcher's OpenTelemetry metrics (fetches
	// and their failures, each CRL's age, time left and entries, checks
	// by outcome and Node code: docs/metrics.md). Nil means the global
	// provider, a no-op until the application installs one.
	MeterProvider metric.MeterProvider

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	switch {
	case o.MaxSize < 0, o.Grace < 0, o.FetchTimeout < 0, o.MinRetryDelay < 0, o.MaxRetryDelay < 0,
		o.MaxRefreshInterval < 0, o.FilePollInterval < 0, o.StoreTimeout < 0:
		return errors.New("crlfetch: negative MaxSize, Grace, FetchTimeout, retry, refresh, poll or Store duration")
	case o.MaxSize >= 1<<32:
		return errors.New("crlfetch: MaxSize of 4 GiB or more")
	}
	o.FirstWait = cmp.Or(o.FirstWait, DefaultFirstWait)
	o.ClockSkew = cmp.Or(o.ClockSkew, DefaultClockSkew)
	o.ClockSkew = max(o.ClockSkew, 0)
	o.FetchTimeout = cmp.Or(o.FetchTimeout, DefaultFetchTimeout)
	o.MinRetryDelay = cmp.Or(o.MinRetryDelay, DefaultMinRetryDelay)
	o.MaxRetryDelay = cmp.Or(o.MaxRetryDelay, max(DefaultMaxRetryDelay, o.MinRetryDelay))
	o.MaxRefreshInterval = cmp.Or(o.MaxRefreshInterval, DefaultMaxRefreshInterval)
	o.FilePollInterval = cmp.Or(o.FilePollInterval, DefaultFilePollInterval)
	o.StoreTimeout = cmp.Or(o.StoreTimeout, DefaultStoreTimeout)
	if o.MaxRetryDelay < o.MinRetryDelay {
		return errors.New("crlfetch: MaxRetryDelay below MinRetryDelay")
	}
	o.MaxSize = cmp.Or(o.MaxSize, DefaultMaxSize)
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, s := range o.Sources {
		switch {
		case s.Issuer == nil:
			return errors.New("crlfetch: a Source needs the Issuer whose CRL it is")
		case (s.URL == "") == (s.File == ""):
			return errors.New("crlfetch: a Source has one of URL and File")
		}
	}
	return nil
}
