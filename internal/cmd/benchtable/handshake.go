package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// A handshake server runs in a process of its own, so that its CPU time can
// be read from /proc apart from the load generator's.
type serverProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	port  int
}

// startServer starts one of the servers under comparison: "crypto/tls",
// "tlsserver", "tlsserver+otel" (this binary in -serve mode; the last with
// the OpenTelemetry SDK installed) or "node".
func startServer(name, dir string) (*serverProc, error) {
	var cmd *exec.Cmd
	switch name {
	case "node":
		cmd = exec.Command("node", "internal/cmd/benchtable/node-server.js", dir)
	default:
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self, "-serve", name, "-dir", dir)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s server did not start: %v", name, err)
	}
	port, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "port "))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s server printed %q", name, line)
	}
	return &serverProc{name: name, cmd: cmd, stdin: stdin, port: port}, nil
}

func (s *serverProc) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// cpuTime returns the CPU time the server process has used: the sum of its
// threads' run time as the scheduler counts it, in nanoseconds
// (/proc/PID/task/*/schedstat). The user+system time of /proc/PID/stat
// comes in 10 ms ticks, about 1.5% of a 3,000-handshake round: too coarse
// to tell a 3% difference apart. Go and Node keep their threads, so none
// of the time is lost with a thread that exits; without schedstat the
// ticks are used.
func (s *serverProc) cpuTime() (time.Duration, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", s.cmd.Process.Pid))
	var sum int64
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that has just exited
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %v", path, err)
			}
			sum += n
		}
	}
	if sum > 0 {
		return time.Duration(sum), nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick, nil
}

// handshakes makes n full TLS 1.3 handshakes (new TCP connection, no
// resumption) at the given concurrency, and checks the staple on each.
func handshakes(port, n, concurrency int, p *benchPKI) error {
	// X25519 alone: Go offers and prefers the X25519MLKEM768 hybrid, which
	// Node 20's OpenSSL 3.0 lacks; the same key exchange for every server
	// keeps the comparison about the servers.
	cfg := &tls.Config{ServerName: "localhost", RootCAs: p.roots(), MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519}}
	var next, bad atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := handshake(addr, cfg, p.staple); err != nil {
					bad.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		return fmt.Errorf("%d of %d handshakes failed, first: %v", bad.Load(), n, firstErr)
	}
	return nil
}

func handshake(addr string, cfg *tls.Config, staple []byte) error {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return err
	}
	if !bytes.Equal(c.ConnectionState().OCSPResponse, staple) {
		return errors.New("wrong or missing staple")
	}
	return nil
}

// serve runs a server for -serve mode: it prints "port N" and serves until
// standard input closes.
func serve(name, dir string) error {
	p, err := loadBenchPKI(dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	switch name {
	case "crypto/tls":
		cert := p.tlsCertificate()
		cert.OCSPStaple = p.staple
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			go func() {
				tc := tls.Server(c, cfg)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				tc.Handshake()
				tc.Close()
			}()
		}
	case "tlsserver", "tlsserver+otel":
		opts := tlsserver.Options{Certificates: []tls.Certificate{p.tlsCertificate()}}
		if name == "tlsserver+otel" {
			// The OpenTelemetry SDK recording every metric; a manual
			// reader, so collection (once a minute or so in a real
			// application) is left out.
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer mp.Shutdown(context.Background())
			opts.MeterProvider = mp
		}
		srv, err := tlsserver.New(opts)
		if err != nil {
			return err
		}
		srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) { cb(nil, p.staple) })
		srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
		srv.Serve(ln)
		return srv.Shutdown(context.Background())
	}
	return fmt.Errorf("unknown server %q", name)
}
