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

	"github.com/tlsemit/tlsemit/internal/closewait"
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
	clock   clock
	session *sealer
	ticket  *sealer

	sessions, tickets, staples health
	metrics                    *metrics
	stats                      counters

	ctx    context.Context // ends at Close: calls in flight stop, and are not outages
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	detaches map[uint64]func() // Sessions registrations, undone by Close
	nextReg  uint64
	rot      *rotator
	done     chan struct{}

	goroutines closewait.Group // the fleet's own: probers, rotation, detached calls
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
		clock:    realClock{},
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
	f.sessions = health{name: "sessions", feature: "sessions", probe: true}
	f.tickets = health{name: "ticket keys", feature: "ticket_keys"}
	f.staples = health{name: "staples", feature: "staples", probe: true}
	f.metrics = newMetrics(opts.MeterProvider)
	f.ctx, f.cancel = context.WithCancel(context.Background())
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

func (f *Fleet) now() time.Time { return f.clock.Now() }

// closeWait bounds how long Close waits for the fleet's Redis calls in
// flight: each has a deadline of OpTimeout, which a client that ignores
// context deadlines may not honour.
const closeWait = OpTimeout + 50*time.Millisecond

// Close stops ticket-key rotation, detaches every Sessions registration,
// ends the fleet's Redis calls in flight and waits for them. Servers keep
// their last ticket keys. The Redis client is not closed.
//
// Close returns within about OpTimeout, whatever Redis and the client do:
// a call that the client does not end at its deadline (a client without
// ContextTimeoutEnabled and with a long ReadTimeout, against a hung Redis)
// is abandoned, to end when the client's own timeout does, and Close says
// so with an error. Close is idempotent.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.goroutines.Close()
	f.cancel()
	close(f.done)
	detaches := make([]func(), 0, len(f.detaches))
	for _, d := range f.detaches {
		detaches = append(detaches, d)
	}
	f.mu.Unlock()
	for _, d := range detaches {
		d()
	}
	return f.waitIdle(closeWait)
}

// waitIdle waits at most d for the goroutines the fleet started.
func (f *Fleet) waitIdle(d time.Duration) error {
	if n := f.goroutines.Wait(time.Now().Add(d)); n > 0 {
		return fmt.Errorf("fleet: Close: %d Redis calls still running after %v (a client that ignores context deadlines), abandoned", n, d)
	}
	return nil
}

// errOpTimeout is the cause of a call's end at the fleet's own deadline.
var errOpTimeout = fmt.Errorf("fleet: Redis did not answer within %v", OpTimeout)

// do runs fn, the Redis operation named op for feature h, and reports its
// outcome to h (see outcome). Its deadline is ctx's, if ctx has one (a
// Fetcher's StoreTimeout, TicketKeys' ctx), else OpTimeout; Close ends it
// too. It returns by the deadline, on the caller's goroutine when the
// client honours deadlines, else from a goroutine of its own that it stops
// waiting for. It is measured.
func do[T any](f *Fleet, ctx context.Context, h *health, op string, fn func(context.Context) (T, error)) (v T, err error) {
	start := time.Now()
	if ctx == nil {
		ctx = f.ctx
	}
	opCtx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		opCtx, cancel = context.WithTimeoutCause(ctx, OpTimeout, errOpTimeout)
	}
	defer cancel()
	if f.inline {
		v, err = fn(opCtx)
	} else {
		v, err = detached(f, opCtx, fn)
	}
	kind := f.outcome(h, op, ctx, opCtx, err, time.Since(start))
	f.metrics.operation(h.feature, op, time.Since(start), err, kind)
	return v, err
}

// detached runs fn on a goroutine of its own and returns its result, or
// ctx's error when ctx ends first.
func detached[T any](f *Fleet, ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	var zero T
	res := make(chan result, 1)
	if !f.goroutines.Go(func() {
		v, err := fn(ctx)
		res <- result{v, err}
	}) {
		return zero, ErrClosed
	}
	select {
	case r := <-res:
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}

// outcomeKind sorts a call's result.
type outcomeKind int

const (
	outcomeOK        outcomeKind = iota // an answer (redis.Nil included)
	outcomeOutage                       // Redis failed, or did not answer in time
	outcomeCaller                       // the caller gave up, or the fleet closed: says nothing of Redis
	outcomeWrongType                    // a value of another type under the key: junk, not an outage
)

// outcome classifies a call that took d and ended with err, and updates h:
// only Redis's own errors and a deadline that passed after Redis had
// OpTimeout to answer are outages. A caller's cancelled context, a
// caller's deadline shorter than OpTimeout, and Close say nothing about
// Redis.
func (f *Fleet) outcome(h *health, op string, ctx, opCtx context.Context, err error, d time.Duration) outcomeKind {
	switch {
	case err == nil, errors.Is(err, redis.Nil):
		f.succeeded(h)
		return outcomeOK
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return outcomeWrongType
	case context.Cause(opCtx) == errOpTimeout:
		err = fmt.Errorf("%w: %w", errOpTimeout, err)
	case f.ctx.Err() != nil, errors.Is(err, ErrClosed):
		return outcomeCaller
	case ctx.Err() != nil && (!errors.Is(ctx.Err(), context.DeadlineExceeded) || d < OpTimeout):
		return outcomeCaller
	}
	f.failed(h, op, err)
	return outcomeOutage
}

// health tracks whether a feature's Redis calls work. While they fail, the
// calls of a feature with probe set are skipped, and a goroutine of the
// fleet's asks Redis once every probeInterval until it answers: an outage
// costs handshakes no waiting, not even for a probe. It is logged once when
// it starts and once when it ends, not per handshake. (Ticket keys are
// polled in the background: each poll is their probe.)
type health struct {
	name     string // as logged
	feature  string // as the metrics' tlsemit.fleet.feature
	probe    bool   // calls are skipped while failing, and a prober runs
	failing  atomic.Bool
	probing  atomic.Bool
	lastJunk atomic.Int64 // unix nanos of the last logged unreadable value
}

// probeInterval is how often a failing feature tries Redis again.
const probeInterval = time.Second

// errSkipped is what a call skipped during an outage reports.
var errSkipped = errors.New("fleet: Redis unavailable; not asked until a probe succeeds")

// skip reports whether a call of h should not be made now.
func (f *Fleet) skip(h *health) bool { return h.probe && h.failing.Load() }

func (f *Fleet) failed(h *health, op string, err error) {
	f.stats.setError(fmt.Errorf("%s, %s: %w", h.name, op, err), f.now())
	if !h.failing.Swap(true) {
		f.log.Warn("fleet: Redis unavailable; "+h.name+" degrade until it answers", "op", op, "err", err)
	}
	if h.probe && !h.probing.Swap(true) && !f.goroutines.Go(func() { f.prober(h) }) {
		h.probing.Store(false)
	}
}

func (f *Fleet) succeeded(h *health) {
	if h.failing.Swap(false) {
		f.log.Info("fleet: Redis answers again for " + h.name)
	}
}

// prober asks Redis every probeInterval until it answers (PING), then
// lets h's calls through again.
func (f *Fleet) prober(h *health) {
	t := f.clock.NewTimer()
	defer t.Stop()
	for {
		for h.failing.Load() {
			t.Reset(probeInterval)
			select {
			case <-f.done:
				h.probing.Store(false)
				return
			case <-t.C():
			}
			do(f, nil, h, "PING", func(ctx context.Context) (string, error) { return f.rdb.Ping(ctx).Result() })
		}
		h.probing.Store(false)
		// A failure between the loop's last look and now found a prober
		// still running, and started none.
		if !h.failing.Load() || !h.probing.CompareAndSwap(false, true) {
			return
		}
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
