// Package redistest runs a real redis-server for tests and demos: on a free
// 127.0.0.1 port, persistence off, its files in a directory of the
// caller's. In a test, Start skips without redis-server, unless CI=true,
// where it fails.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/internal/testenv"
)

// Server is a running redis-server process.
type Server struct {
	// Addr is host:port of the server.
	Addr string

	dir     string
	port    int
	cluster bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *bytes.Buffer
	waited chan struct{}
	paused bool
}

// Start runs redis-server for the rest of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.RequireTool(t, "redis-server")
	s, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run starts redis-server with its files in dir. Stop ends it.
func Run(dir string) (*Server, error) { return run(dir, false) }

func run(dir string, cluster bool) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, port: port, cluster: cluster, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// StartCluster runs a Redis Cluster of n primaries (no replicas) for the
// rest of the test, its 16,384 hash slots split evenly, and returns the
// nodes' addresses once the cluster is ok.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	testenv.RequireTool(t, "redis-server")
	var addrs []string
	var clients []*redis.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := range n {
		s, err := run(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		addrs = append(addrs, s.Addr)
		c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		clients = append(clients, c)
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(context.Background(), "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE: %v", err)
		}
	}
	for _, c := range clients[1:] {
		if err := c.ClusterMeet(context.Background(), "127.0.0.1", clients[0].Options().Addr[len("127.0.0.1:"):]).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET: %v", err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok within 20s: %v\n%s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}

// Client returns a new client of s, closed when the test ends. Its
// timeouts are short, as a fleet's should be.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *Server) start() error {
	// No RDB snapshots, no AOF, nothing outside dir.
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no"}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	cmd := exec.Command("redis-server", args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = testenv.LockedWriter(out, &s.mu), testenv.LockedWriter(out, &s.mu)
	// If this process dies, so does the server: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	s.mu.Lock()
	s.cmd, s.out, s.waited, s.paused = cmd, out, waited, false
	s.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-waited:
			return fmt.Errorf("redistest: redis-server exited before serving:\n%s", s.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redistest: redis-server not answering on %s within 10s (%v):\n%s", s.Addr, err, s.Output())
		}
	}
}

// Stop kills the server (its data is gone). It is safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, waited, paused := s.cmd, s.waited, s.paused
	s.cmd, s.waited, s.paused = nil, nil, false
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Kill()
	<-waited
}

// Restart stops the server and starts an empty one on the same port.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing is answered, as with a hung Redis.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP, true) }

// Resume undoes Pause.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return err
	}
	s.paused = paused
	return nil
}

// Output returns what the server printed (for failure messages).
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
