// Package redistest runs a real redis-server for tests: on a free
// 127.0.0.1 port, persistence off, stopped when the test ends. Without
// redis-server a test is skipped, unless CI=true, where it fails.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
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

	t    testing.TB
	dir  string
	port int

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
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	t.Cleanup(s.Stop)
	s.start()
	return s
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
		Protocol:              2,
		DisableIdentity:       true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *Server) start() {
	s.t.Helper()
	// No RDB snapshots, no AOF, nothing outside the test's directory.
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no")
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = lockedWriter{&s.mu, out}, lockedWriter{&s.mu, out}
	// If the test binary dies, so does the server: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting redis-server: %v", err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	s.mu.Lock()
	s.cmd, s.out, s.waited, s.paused = cmd, out, waited, false
	s.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-waited:
			s.t.Fatalf("redistest: redis-server exited before serving:\n%s", s.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redistest: redis-server not answering on %s within 10s (%v):\n%s", s.Addr, err, s.Output())
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
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing is answered, as with a hung Redis.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	s.paused = paused
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

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// String describes the server.
func (s *Server) String() string { return fmt.Sprintf("redis-server at %s", s.Addr) }
