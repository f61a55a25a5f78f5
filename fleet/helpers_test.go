package fleet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// TestMain gives the examples, which read REDIS_ADDR as a program would, a
// real redis-server (with CI=true, one is required). Outside CI, without
// redis-server, miniredis stands in for the examples alone; the tests that
// need the real server skip.
func TestMain(m *testing.M) {
	stop := func() {}
	if os.Getenv("REDIS_ADDR") == "" {
		dir, err := os.MkdirTemp("", "fleet-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		switch _, lookErr := exec.LookPath("redis-server"); {
		case lookErr == nil:
			rs, err := redistest.Run(dir)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Setenv("REDIS_ADDR", rs.Addr)
			stop = rs.Stop
		case testenv.CI():
			fmt.Fprintln(os.Stderr, "redis-server is required with CI=true (.ci/run installs it):", lookErr)
			os.Exit(1)
		default:
			mr, err := miniredis.Run()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Setenv("REDIS_ADDR", mr.Addr())
			stop = mr.Close
		}
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var secret = bytes.Repeat([]byte{0x5e}, 32)

// member is one server of a fleet, listening on loopback.
type member struct {
	srv  *tlsserver.Server
	fl   *fleet.Fleet
	addr string
}

type memberOptions struct {
	fleet    fleet.Options
	sessions bool // Sessions (the session store) instead of TicketKeys
	cert     tls.Certificate
	clock    *fleet.FakeClock // nil: real time
}

func startMember(t testing.TB, rdb redis.UniversalClient, o memberOptions) *member {
	t.Helper()
	o.fleet.Redis = rdb
	if o.fleet.Secret == nil {
		o.fleet.Secret = secret
	}
	fl, err := fleet.New(o.fleet)
	if err != nil {
		t.Fatal(err)
	}
	if o.clock != nil {
		fleet.SetClock(fl, o.clock)
	}
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{o.cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv.OnSecureConnection(func(c *tls.Conn) {
		c.Write([]byte("ok"))
		c.Close()
	})
	if o.sessions {
		if _, err := fl.Sessions(srv); err != nil {
			t.Fatal(err)
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := fl.TicketKeys(ctx, srv); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		fl.Close()
	})
	return &member{srv: srv, fl: fl, addr: srv.Addr().String()}
}

// client handshakes like a browser that keeps its sessions: one session
// cache across every member.
type client struct {
	cfg    *tls.Config
	keylog *syncBuffer
}

func newClient(ca *testpki.CA, version uint16) *client {
	kl := &syncBuffer{}
	return &client{keylog: kl, cfg: &tls.Config{
		RootCAs:            ca.Pool(),
		ServerName:         "localhost",
		MinVersion:         version,
		MaxVersion:         version,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		KeyLogWriter:       kl,
	}}
}

// connect handshakes with addr, reads the server's "ok" (which also takes
// in a TLS 1.3 ticket) and reports whether the session was resumed.
func (c *client) connect(t testing.TB, addr string) bool {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, c.cfg)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "ok" {
		t.Fatalf("reading from %s: %q, %v", addr, b, err)
	}
	return conn.ConnectionState().DidResume
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startRedis(t testing.TB) (*redistest.Server, redis.UniversalClient) {
	rs := redistest.Start(t)
	return rs, rs.Client(t)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// go-redis logs dial failures through its own process-wide logger; the
// outage tests cause many.
func init() { redis.SetLogger(quietRedis{}) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// polls advances clk until every fleet in fls has polled its ticket keys
// at least once more, waiting each time for every rotation loop to be
// parked on the clock again (so that none misses the move).
func polls(t testing.TB, clk *fleet.FakeClock, step time.Duration, fls ...*fleet.Fleet) {
	t.Helper()
	before := make([]int64, len(fls))
	for i, fl := range fls {
		before[i] = fleet.Syncs(fl)
	}
	for {
		testenv.WaitFor(t, func() bool { return clk.Armed() >= len(fls) })
		done := true
		for i, fl := range fls {
			done = done && fleet.Syncs(fl) > before[i]
		}
		if done {
			return
		}
		clk.Advance(step)
	}
}

// crossTo advances clk to just past the start of the next ticket-key slot
// (of period), waiting for the rotation loops first, then until every
// member encrypts with a key other than the one it had.
func crossTo(t testing.TB, clk *fleet.FakeClock, period time.Duration, ms ...*member) {
	t.Helper()
	old := make([][]byte, len(ms))
	for i, m := range ms {
		old[i] = m.srv.TicketKeys()
	}
	testenv.WaitFor(t, func() bool { return clk.Armed() >= len(ms) })
	clk.Set(clk.Now().Truncate(period).Add(period + time.Millisecond))
	testenv.WaitFor(t, func() bool {
		for i, m := range ms {
			if bytes.Equal(m.srv.TicketKeys(), old[i]) {
				return false
			}
		}
		return true
	})
}

// newServer returns a server that does not listen, closed at the end.
func newServer(t testing.TB, cert tls.Certificate) *tlsserver.Server {
	t.Helper()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
