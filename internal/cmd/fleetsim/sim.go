package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// member is one server of the fleet, with its own Redis client.
type member struct {
	rdb  *redis.Client
	fl   *fleet.Fleet
	f    *ocspfetch.Fetcher
	srv  *tlsserver.Server
	addr string
}

// counts are the Redis commands the members sent, by feature, as a hook
// on each client sees them (a pipeline's commands one by one), and the
// connections they opened.
type counts struct {
	mu    sync.Mutex
	cmds  map[string]int64
	dials atomic.Int64
}

func (c *counts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.cmds))
	for k, v := range c.cmds {
		out[k] = v
	}
	return out
}

func (c *counts) add(cmd redis.Cmder) {
	args := cmd.Args()
	name := strings.ToUpper(fmt.Sprint(args[0]))
	key := ""
	switch {
	case (name == "EVALSHA" || name == "EVAL") && len(args) > 3:
		key = fmt.Sprint(args[3])
	case len(args) > 1:
		key = fmt.Sprint(args[1])
	}
	feature := "other"
	switch {
	case strings.Contains(key, "{ticket-keys}"):
		feature = "tickets"
	case strings.HasPrefix(key, fleet.DefaultPrefix+"session:"):
		feature = "sessions"
	case strings.HasPrefix(key, fleet.DefaultPrefix+"ocsp"):
		feature = "staples"
	case name == "PING":
		feature = "probes"
	}
	c.mu.Lock()
	c.cmds[feature]++
	c.cmds[feature+" "+name]++
	c.mu.Unlock()
}

func (c *counts) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (c *counts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *counts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		return next(ctx, cmds)
	}
}

// responder answers OCSP requests for the sim's certificates, Good,
// produced now and valid cfg.validity, and records when each certificate
// was asked about.
type responder struct {
	ca       *testpki.CA
	leaves   []*testpki.Leaf
	bySerial map[string]int
	validity time.Duration

	mu       sync.Mutex
	requests [][]time.Time // by certificate
	produced [][]time.Time // the ThisUpdate of each answer, by certificate
}

func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var der []byte
	var err error
	if req.Method == http.MethodGet {
		p, _ := url.PathUnescape(strings.TrimPrefix(req.URL.Path, "/"))
		der, err = base64.StdEncoding.DecodeString(p)
	} else {
		der, err = io.ReadAll(io.LimitReader(req.Body, 10000))
	}
	var q *ocsp.Request
	if err == nil {
		q, err = ocsp.ParseRequest(der)
	}
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	i, ok := r.bySerial[q.SerialNumber.String()]
	if !ok {
		http.Error(w, "unknown certificate", http.StatusNotFound)
		return
	}
	now := time.Now()
	r.mu.Lock()
	// The first answer of each certificate is dated back by a share of
	// half the lifetime, as in a fleet that has run for a while, where
	// certificates' refreshes are spread over time; later answers are
	// produced now.
	tu := now
	if len(r.requests[i]) == 0 {
		tu = now.Add(-time.Duration(i) * r.validity / 2 / time.Duration(len(r.leaves)))
	}
	tu = tu.Truncate(time.Second) // what the response can carry
	r.requests[i] = append(r.requests[i], now)
	r.produced[i] = append(r.produced[i], tu)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(r.ca.OCSPResponse(testpki.Exit, r.leaves[i].Cert, testpki.ResponseOptions{ThisUpdate: tu, NextUpdate: tu.Add(r.validity)}))
}

// requestsIn counts the requests for each certificate in [from, to).
func (r *responder) requestsIn(from, to time.Time) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, len(r.requests))
	for i, ts := range r.requests {
		for _, t := range ts {
			if !t.Before(from) && t.Before(to) {
				out[i]++
			}
		}
	}
	return out
}

// handshake is one client connection's outcome.
type handshake struct {
	at             time.Time
	took           time.Duration
	resume, resumd bool // a resumption was attempted, and happened
	err            error
}

// load drives cfg.rate handshakes a second over the members, from a pool
// of clients that keep their sessions.
type load struct {
	s       *sim
	stop    chan struct{}
	done    sync.WaitGroup
	clients []*vclient

	mu  sync.Mutex
	hss []handshake
}

type vclient struct {
	busy  atomic.Bool
	cert  int
	cache tls.ClientSessionCache
	has   bool
	last  int // the member that issued the session
}

func (l *load) run() {
	defer l.done.Done()
	t := time.NewTicker(time.Second / time.Duration(l.s.cfg.rate))
	defer t.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		c := l.clients[rand.IntN(len(l.clients))]
		if !c.busy.CompareAndSwap(false, true) {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.busy.Store(false)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem; c.busy.Store(false) }()
			l.one(c)
		})
	}
}

// one makes a handshake for c: a resumption on another member than the
// one that issued its session, or a full handshake on any member with a
// fresh session cache.
func (l *load) one(c *vclient) {
	s := l.s
	hs := handshake{at: time.Now()}
	m := rand.IntN(len(s.members))
	if c.has && rand.Float64() < s.cfg.resume {
		hs.resume = true
		m = (c.last + 1 + rand.IntN(len(s.members)-1)) % len(s.members)
	} else {
		c.cache = tls.NewLRUClientSessionCache(1)
		c.has = false
	}
	cfg := &tls.Config{RootCAs: s.ca.Pool(), ServerName: s.names[c.cert], ClientSessionCache: c.cache}
	conn, err := net.Dial("tcp", s.members[m].addr)
	if err == nil {
		tc := tls.Client(conn, cfg)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err = tc.Handshake(); err == nil {
			hs.took = time.Since(hs.at)
			io.ReadAll(tc) // the greeting, and the TLS 1.3 ticket with it
			hs.resumd = tc.ConnectionState().DidResume
			if !hs.resumd && tc.ConnectionState().OCSPResponse == nil {
				err = fmt.Errorf("member %d, %s: a full handshake without a staple", m, s.names[c.cert])
			}
		}
		tc.Close()
	}
	hs.err = err
	if err == nil {
		c.has, c.last = true, m // the member that issued its session
	}
	l.mu.Lock()
	l.hss = append(l.hss, hs)
	l.mu.Unlock()
}

func (l *load) handshakes(from, to time.Time) []handshake {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []handshake
	for _, h := range l.hss {
		if !h.at.Before(from) && h.at.Before(to) {
			out = append(out, h)
		}
	}
	return out
}

// sim is one fleet of m members, its Redis and its responder.
type sim struct {
	cfg     config
	m       int
	rs      *redistest.Server
	admin   *redis.Client
	ca      *testpki.CA
	names   []string
	resp    *responder
	members []*member
	counts  *counts
}

func newSim(cfg config, m int, dir string) (*sim, error) {
	s := &sim{cfg: cfg, m: m, counts: &counts{cmds: map[string]int64{}}}
	var err error
	if s.rs, err = redistest.Run(dir); err != nil {
		return nil, err
	}
	s.admin = redis.NewClient(&redis.Options{Addr: s.rs.Addr, MaxRetries: -1})
	s.ca = testpki.NewCA(testpki.Exit, "fleetsim CA")
	s.resp = &responder{ca: s.ca, bySerial: map[string]int{}, validity: cfg.validity,
		requests: make([][]time.Time, cfg.certs), produced: make([][]time.Time, cfg.certs)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: s.resp}
	go hs.Serve(ln)
	respURL := "http://" + ln.Addr().String() + "/"
	var certs []tls.Certificate
	for i := range cfg.certs {
		name := fmt.Sprintf("site-%d.fleetsim.test", i)
		leaf := s.ca.Issue(testpki.Exit, testpki.LeafOptions{DNSNames: []string{name}, OCSPServer: []string{respURL}})
		s.names = append(s.names, name)
		s.resp.leaves = append(s.resp.leaves, leaf)
		s.resp.bySerial[leaf.Cert.SerialNumber.String()] = i
		certs = append(certs, leaf.TLSCertificate(true))
	}
	secret := []byte("fleetsim: 32 bytes of fleet key!")
	for range m {
		mb := &member{rdb: redis.NewClient(&redis.Options{Addr: s.rs.Addr, ContextTimeoutEnabled: true, MaxRetries: -1})}
		mb.rdb.AddHook(s.counts)
		if mb.fl, err = fleet.New(fleet.Options{Redis: mb.rdb, Secret: secret, TicketKeyPeriod: cfg.period, TicketLifetime: cfg.lifetime}); err != nil {
			return nil, err
		}
		if mb.f, err = ocspfetch.New(ocspfetch.Options{
			Store: mb.fl.Store(), MinRefreshInterval: time.Second,
			// Retries a second apart at most: the answers live seconds here,
			// not days.
			MinRetryDelay: 250 * time.Millisecond, MaxRetryDelay: time.Second,
		}); err != nil {
			return nil, err
		}
		if mb.srv, err = tlsserver.New(tlsserver.Options{Certificates: certs[:1]}); err != nil {
			return nil, err
		}
		for i, c := range certs {
			if err := mb.srv.AddContext(s.names[i], tlsserver.SecureContext{Certificates: []tls.Certificate{c}}); err != nil {
				return nil, err
			}
		}
		mb.srv.OnOCSPRequest(mb.f.OCSPRequest)
		mb.srv.OnSecureConnection(func(c *tls.Conn) {
			c.Write([]byte("ok"))
			c.Close()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := mb.fl.TicketKeys(ctx, mb.srv)
		cancel()
		if err != nil {
			return nil, err
		}
		if _, err := mb.fl.Sessions(mb.srv); err != nil {
			return nil, err
		}
		if err := mb.srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
		mb.addr = mb.srv.Addr().String()
		s.members = append(s.members, mb)
	}
	return s, nil
}

func (s *sim) close() {
	for _, mb := range s.members {
		mb.srv.Close()
		mb.f.Close()
		mb.fl.Close()
		mb.rdb.Close()
	}
	s.admin.Close()
	s.rs.Stop()
}

// prefetch has every member staple every certificate, as the members of
// a fleet that has served them for a while do: the first member asks the
// responder, the others adopt its answers from Redis, a few at a time.
func (s *sim) prefetch() error {
	errs := make(chan error, len(s.members))
	staple := func(mb *member) {
		sem := make(chan struct{}, 4)
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		for _, leaf := range s.resp.leaves {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := mb.f.Staple(ctx, leaf.DER, s.ca.DER); err != nil {
					failed.Store(&err)
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			errs <- fmt.Errorf("prefetch: %w", *err)
			return
		}
		errs <- nil
	}
	staple(s.members[0])
	if err := <-errs; err != nil {
		return err
	}
	for _, mb := range s.members[1:] {
		go staple(mb)
	}
	for range s.members[1:] {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// sessionBytes returns the mean MEMORY USAGE of up to n session keys, and
// the mean length of their values.
func (s *sim) sessionBytes(n int) (usage, value float64, err error) {
	ctx := context.Background()
	var keys []string
	iter := s.admin.Scan(ctx, 0, fleet.DefaultPrefix+"session:*", 100).Iterator()
	for iter.Next(ctx) && len(keys) < n {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return 0, 0, err
	}
	if len(keys) == 0 {
		return 0, 0, fmt.Errorf("no session in Redis")
	}
	var u, v int64
	for _, k := range keys {
		mu, err := s.admin.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			return 0, 0, err
		}
		sl, err := s.admin.StrLen(ctx, k).Result()
		if err != nil {
			return 0, 0, err
		}
		u, v = u+mu, v+sl
	}
	return float64(u) / float64(len(keys)), float64(v) / float64(len(keys)), nil
}

// clients returns the clients connected to Redis, the sim's own excepted.
func (s *sim) clients() (int, error) {
	info, err := s.admin.Info(context.Background(), "clients").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			var n int
			fmt.Sscan(v, &n)
			return n - 1, nil
		}
	}
	return 0, fmt.Errorf("no connected_clients in INFO")
}

// result is what one fleet size measured.
type result struct {
	m                   int
	handshakes          int     // in the steady window
	resumeTried         int     // resumptions attempted on another member
	resumed             int     // and made
	failed              []error // handshakes that failed, over the whole run
	requests            int     // responder requests in the steady window
	waves               int     // refreshes in the steady window (a certificate's first request of a wave)
	stapleCmds          int64   // Redis commands for staples in the steady window
	stapleByCmd         map[string]int64
	sessionCmds         int64
	ticketCmds          int64
	window              time.Duration
	beforeHalf          []float64 // how early each refresh came, as a share of half the lifetime
	sessionUsage, value float64
	conns               float64 // per member
	dials               float64 // per member
	// The hang.
	hung              bool
	hangCerts         int // certificates whose refresh fell in the hang
	hangRequests      []int
	hangHandshakes    int
	hangWaited        int // handshakes that took OpTimeout or more
	hangProbeCommands int64
}

// run is one fleet size, start to end.
func run(cfg config, m int) (*result, error) {
	dir, err := os.MkdirTemp("", "fleetsim-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "fleetsim: %d members: starting\n", m)
	s, err := newSim(cfg, m, dir)
	if err != nil {
		return nil, err
	}
	defer s.close()
	r := &result{m: m, window: cfg.steady}
	l := &load{s: s, stop: make(chan struct{})}
	for i := range 4 * cfg.certs {
		l.clients = append(l.clients, &vclient{cert: i % cfg.certs})
	}
	l.done.Add(1)
	go l.run()
	stopped := false
	stop := func() {
		if !stopped {
			close(l.stop)
			l.done.Wait()
			stopped = true
		}
	}
	defer stop()

	if err := s.prefetch(); err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "fleetsim: %d members: steady load for %v\n", m, cfg.steady)
	c0, t0 := s.counts.snapshot(), time.Now()
	time.Sleep(cfg.steady)
	c1, t1 := s.counts.snapshot(), time.Now()
	r.stapleCmds, r.sessionCmds, r.ticketCmds = c1["staples"]-c0["staples"], c1["sessions"]-c0["sessions"], c1["tickets"]-c0["tickets"]
	r.stapleByCmd = map[string]int64{}
	for _, name := range []string{"GETRANGE", "SET", "EVALSHA", "EVAL", "DEL"} {
		if n := c1["staples "+name] - c0["staples "+name]; n > 0 {
			r.stapleByCmd[name] = n
		}
	}
	for _, h := range l.handshakes(t0, t1) {
		r.handshakes++
		if h.resume && h.err == nil {
			r.resumeTried++
			if h.resumd {
				r.resumed++
			}
		}
	}
	// The responder's requests in the window: one more than a quarter of
	// the lifetime after the answer before it was produced is a refresh;
	// one within that is another member asking again in the same wave.
	half := cfg.validity / 2
	s.resp.mu.Lock()
	for i, ts := range s.resp.requests {
		for j := 1; j < len(ts); j++ {
			if ts[j].Before(t0) || !ts[j].Before(t1) {
				continue
			}
			r.requests++
			if ts[j].Sub(s.resp.produced[i][j-1]) > half/2 {
				r.waves++
				if j > 1 { // (the first answer was dated back)
					due := s.resp.produced[i][j-1].Add(half)
					r.beforeHalf = append(r.beforeHalf, float64(due.Sub(ts[j]))/float64(half))
				}
			}
		}
	}
	s.resp.mu.Unlock()
	if r.sessionUsage, r.value, err = s.sessionBytes(1000); err != nil {
		return nil, err
	}
	n, err := s.clients()
	if err != nil {
		return nil, err
	}
	r.conns = float64(n) / float64(m)
	r.dials = float64(s.counts.dials.Load()) / float64(m)

	if cfg.hang > 0 {
		if err := s.hang(r, l); err != nil {
			return nil, err
		}
	}
	stop()
	for _, h := range l.handshakes(time.Time{}, time.Now().Add(time.Hour)) {
		if h.err != nil {
			r.failed = append(r.failed, h.err)
		}
	}
	return r, nil
}

// hang stops Redis (SIGSTOP) for cfg.hang, at once, and measures what it
// costs the responder for the certificates whose refresh wave it meets,
// and the handshakes made meanwhile.
func (s *sim) hang(r *result, l *load) error {
	cfg := s.cfg
	half, spread := cfg.validity/2, cfg.validity/20 // ocspfetch refreshes at half the lifetime, ±5 % of it
	// When each certificate's wave comes: from the earliest member's
	// refresh to the latest's.
	s.resp.mu.Lock()
	first, last := make([]time.Time, cfg.certs), make([]time.Time, cfg.certs)
	for i, ts := range s.resp.produced {
		first[i], last[i] = ts[len(ts)-1].Add(half-spread), ts[len(ts)-1].Add(half+spread)
	}
	s.resp.mu.Unlock()
	fmt.Fprintf(os.Stderr, "fleetsim: %d members: Redis hung (SIGSTOP) for %v\n", s.m, cfg.hang)
	p0 := s.counts.snapshot()["probes"]
	start := time.Now()
	if err := s.rs.Pause(); err != nil {
		return err
	}
	time.Sleep(cfg.hang)
	if err := s.rs.Resume(); err != nil {
		return err
	}
	end := time.Now()
	// Let the deferred refreshes run (they retry within a second).
	time.Sleep(3 * time.Second)
	r.hung = true
	r.hangProbeCommands = s.counts.snapshot()["probes"] - p0
	reqs := s.resp.requestsIn(start, time.Now())
	for i := range first {
		if first[i].Before(end) && last[i].After(start) { // its wave met the hang
			r.hangCerts++
			r.hangRequests = append(r.hangRequests, reqs[i])
		}
	}
	for _, h := range l.handshakes(start, end) {
		r.hangHandshakes++
		if h.took >= fleet.OpTimeout {
			r.hangWaited++
		}
	}
	return nil
}
