package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
)

// Defaults for the zero values of Options.
const (
	DefaultPrefix          = "tlsemit:"
	DefaultSessionTTL      = 300 * time.Second // Node's sessionTimeout
	DefaultTicketKeyPeriod = time.Hour
	DefaultTicketLifetime  = 24 * time.Hour

	// MinSecretSize is the least Secret New accepts.
	MinSecretSize = 32

	// OpTimeout bounds every Redis call the fleet makes: well inside a
	// handshake's budget (ocspfetch waits 2 s by default, Node 120 s), so a
	// slow or hung Redis costs resumption or sharing, never a handshake.
	OpTimeout = 250 * time.Millisecond
)

// ErrClosed is returned for work asked of a closed Fleet.
var ErrClosed = errors.New("fleet: closed")

// Options configure a Fleet.
type Options struct {
	// Redis is the shared store: a single node, Sentinel or Cluster client.
	// Required. The Fleet does not close it. Clients made with
	// ContextTimeoutEnabled honour the fleet's deadlines on the socket
	// itself; with others the fleet stops waiting at the deadline and the
	// call ends at the client's own timeouts.
	Redis redis.UniversalClient
	// Prefix starts every key the fleet writes; fleets with different
	// prefixes share a Redis without touching each other's data. It must
	// not contain '{' or '}' (the fleet sets its own Cluster hash tags).
	// Empty means DefaultPrefix.
	Prefix string
	// Secret seals session state and ticket keys at rest; at least
	// MinSecretSize bytes, the same on every member. Required.
	Secret []byte
	// SessionTTL is how long a session stored by Sessions can resume. Zero
	// means DefaultSessionTTL.
	SessionTTL time.Duration
	// TicketKeyPeriod is how often the fleet's ticket-encrypting key
	// changes. Zero means DefaultTicketKeyPeriod.
	TicketKeyPeriod time.Duration
	// TicketLifetime is how long a ticket stays resumable: older keys are
	// kept for decryption that long. Zero means DefaultTicketLifetime.
	TicketLifetime time.Duration
	// Logger receives Redis outages and recoveries, and values that do not
	// open. Nil: silent.
	Logger *slog.Logger
	// MeterProvider receives the fleet's metrics (docs/metrics.md): Redis
	// operation latency and errors by feature, ticket-key rotations,
	// staples adopted from another member. Nil means the global provider,
	// a no-op until the application installs one.
	MeterProvider metric.MeterProvider
}

// Fleet shares OCSP staples, TLS sessions and session-ticket keys among
// servers through Redis. Make one per process with New; its methods are
// safe for concurrent use.
type Fleet struct {
	rdb     redis.UniversalClient
	prefix  string
	ttl     time.Duration
	period  time.Duration
	life    time.Duration
	log     *slog.Logger
	inline  bool // the client honours context deadlines on its sockets
	now     func() time.Time
	session *sealer
	ticket  *sealer

	sessions, tickets, staples health
	metrics                    *metrics

	mu       sync.Mutex
	closed   bool
	detaches map[uint64]func() // Sessions registrations, undone by Close
	nextReg  uint64
	rot      *rotator
	wg       sync.WaitGroup // goroutines started for Redis calls and loops
	done     chan struct{}
}

// New returns a Fleet for opts. It fails without a Redis client, with a
// Secret shorter than MinSecretSize, or with a malformed option; it does
// not contact Redis.
func New(opts Options) (*Fleet, error) {
	if opts.Redis == nil {
		return nil, errors.New("fleet: Options.Redis is required")
	}
	if len(opts.Secret) < MinSecretSize {
		return nil, fmt.Errorf("fleet: Options.Secret must be at least %d bytes, got %d", MinSecretSize, len(opts.Secret))
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("fleet: Options.Prefix %q contains '{' or '}'", opts.Prefix)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SessionTTL", opts.SessionTTL}, {"TicketKeyPeriod", opts.TicketKeyPeriod}, {"TicketLifetime", opts.TicketLifetime}} {
		if d.v < 0 {
			return nil, fmt.Errorf("fleet: Options.%s is negative", d.name)
		}
	}
	f := &Fleet{
		rdb:      opts.Redis,
		prefix:   cmp.Or(opts.Prefix, DefaultPrefix),
		ttl:      cmp.Or(opts.SessionTTL, DefaultSessionTTL),
		period:   cmp.Or(opts.TicketKeyPeriod, DefaultTicketKeyPeriod),
		life:     cmp.Or(opts.TicketLifetime, DefaultTicketLifetime),
		log:      opts.Logger,
		now:      time.Now,
		detaches: make(map[uint64]func()),
		done:     make(chan struct{}),
	}
	if f.period < time.Second {
		return nil, errors.New("fleet: Options.TicketKeyPeriod must be at least a second")
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.inline = honoursDeadlines(opts.Redis)
	var err error
	if f.session, err = newSealer(opts.Secret, "session"); err != nil {
		return nil, err
	}
	if f.ticket, err = newSealer(opts.Secret, "ticket-key"); err != nil {
		return nil, err
	}
	f.sessions.name, f.tickets.name, f.staples.name = "sessions", "ticket keys", "staples"
	f.sessions.feature, f.tickets.feature, f.staples.feature = "sessions", "ticket_keys", "staples"
	f.metrics = newMetrics(opts.MeterProvider)
	return f, nil
}

// honoursDeadlines reports whether the client applies context deadlines to
// its sockets, so that a call can run on the caller's goroutine.
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Close stops ticket-key rotation, detaches every Sessions registration and
// waits for the fleet's Redis calls in flight. Servers keep their last
// ticket keys. The Redis client is not closed. Close is idempotent.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	close(f.done)
	detaches := make([]func(), 0, len(f.detaches))
	for _, d := range f.detaches {
		detaches = append(detaches, d)
	}
	f.mu.Unlock()
	for _, d := range detaches {
		d()
	}
	f.wg.Wait()
	return nil
}

// do runs fn, the Redis operation named op for feature h, with a deadline
// of OpTimeout, and returns by then, whether or not the client honours the
// deadline. It is measured.
func do[T any](f *Fleet, h *health, op string, fn func(context.Context) (T, error)) (v T, err error) {
	start := time.Now()
	defer func() { f.metrics.operation(h.feature, op, time.Since(start), err) }()
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	if f.inline {
		return fn(ctx)
	}
	type result struct {
		v   T
		err error
	}
	res := make(chan result, 1)
	if !f.goTracked(func() {
		v, err := fn(ctx)
		res <- result{v, err}
	}) {
		var zero T
		return zero, ErrClosed
	}
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// goTracked runs fn in a goroutine that Close waits for, unless the fleet
// is closed.
func (f *Fleet) goTracked(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// health tracks whether a feature's Redis calls work. While they fail,
// calls are skipped but for one probe a second, so that an outage costs
// handshakes no waiting, and it is logged once when it starts and once when
// it ends, not per handshake.
type health struct {
	name      string // as logged
	feature   string // as the metrics' tlsemit.fleet.feature
	failing   atomic.Bool
	nextProbe atomic.Int64 // unix nanos; while failing, calls before it are skipped
	lastJunk  atomic.Int64 // unix nanos of the last logged unreadable value
}

// probeInterval is how often a failing feature tries Redis again.
const probeInterval = time.Second

// errSkipped is what a call skipped during an outage reports.
var errSkipped = errors.New("fleet: Redis unavailable; not asked until the next probe")

// skip reports whether a call should not be made now: the feature is
// failing and this is not the one probe of the interval.
func (f *Fleet) skip(h *health) bool {
	if !h.failing.Load() {
		return false
	}
	now := f.now().UnixNano()
	next := h.nextProbe.Load()
	return now < next || !h.nextProbe.CompareAndSwap(next, now+int64(probeInterval))
}

func (f *Fleet) failed(h *health, op string, err error) {
	h.nextProbe.Store(f.now().Add(probeInterval).UnixNano())
	if !h.failing.Swap(true) {
		f.log.Warn("fleet: Redis unavailable; "+h.name+" degrade until it answers", "op", op, "err", err)
	}
}

func (f *Fleet) succeeded(h *health) {
	if h.failing.Swap(false) {
		f.log.Info("fleet: Redis answers again for " + h.name)
	}
}

// junk logs, at most once a minute per feature, a value under the prefix
// that could not be used.
func (f *Fleet) junk(h *health, key string, err error) {
	now := f.now().UnixNano()
	last := h.lastJunk.Load()
	if now-last < int64(time.Minute) || !h.lastJunk.CompareAndSwap(last, now) {
		return
	}
	f.log.Warn("fleet: ignoring unreadable value", "feature", h.name, "key", key, "err", err)
}
