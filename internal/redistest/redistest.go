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
	s, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run starts redis-server with its files in dir. Stop ends it.
func Run(dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
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
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "yes", "--loglevel", "warning", "--daemonize", "no")
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = lockedWriter{&s.mu, out}, lockedWriter{&s.mu, out}
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

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
