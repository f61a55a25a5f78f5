package loadtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// parked is how many handshakes wait on their 'OCSPRequest' callback at
// once. The clients run in a child process (this test binary again), so
// that each side stays under the per-process open-file limit.
const parked = 10000

const parkedStaple = "parked-staple"

// TestLoadParkedHandshakes parks 10,000 handshakes on callbacks that are
// not called yet, checks what that costs the server (goroutines and heap,
// nothing else), begins a Shutdown (a deploy: new clients are refused),
// then answers them all and checks that every client gets its staple,
// that Shutdown returns once they are done, and that the server's
// goroutines go back to where they were.
func TestLoadParkedHandshakes(t *testing.T) {
	if addr := os.Getenv("TLSEMIT_PARKED_CLIENT"); addr != "" {
		parkedClients(t, addr, os.Getenv("TLSEMIT_PARKED_CA"))
		return
	}
	if os.Getenv("TLSEMIT_LOAD") != "1" {
		t.Skip("load test: set TLSEMIT_LOAD=1 (make load)")
	}
	raiseFileLimit(t, parked+100)

	ca := testpki.NewCA(t, "parked CA")
	leaf := ca.Issue(t, testpki.LeafOptions{})
	caPath, _ := ca.WritePEM(t.TempDir())
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{leaf.TLSCertificate(true)},
		HandshakeTimeout: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		pending []tlsserver.OCSPCallback
		all     = make(chan struct{})
		failed  atomic.Int64
	)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		mu.Lock()
		pending = append(pending, cb)
		if len(pending) == parked {
			close(all)
		}
		mu.Unlock()
	})
	srv.OnTLSClientError(func(error, net.Conn) { failed.Add(1) })
	srv.OnSecureConnection(func(c *tls.Conn) {
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heapInUse()
	if err := srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-test.run=^TestLoadParkedHandshakes$", "-test.v")
	child.Env = append(os.Environ(), "TLSEMIT_PARKED_CLIENT="+srv.Addr().String(), "TLSEMIT_PARKED_CA="+caPath)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	start := time.Now()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	childDone := make(chan error, 1)
	go func() { childDone <- child.Wait() }()

	select {
	case <-all:
	case err := <-childDone:
		t.Fatalf("the clients ended before %d handshakes were parked: %v\n%s", parked, err, out.String())
	case <-time.After(4 * time.Minute):
		child.Process.Kill()
		t.Fatalf("only %d handshakes parked after 4 minutes", len(pending))
	}
	parkTime := time.Since(start)
	goroutines := runtime.NumGoroutine() - baseGoroutines
	heap := heapInUse() - baseHeap
	fds := openFiles()

	// A deploy now: Shutdown stops accepting at once and lets the parked
	// handshakes finish.
	addr := srv.Addr().String()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(context.Background()) }()
	for end := time.Now().Add(time.Minute); srv.Addr() != nil; runtime.Gosched() {
		if time.Now().After(end) {
			t.Fatal("Shutdown did not stop accepting")
		}
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a client connected after Shutdown began")
	}
	if n := srv.Stats().Handshaking; n != parked {
		t.Errorf("%d handshakes under way after Shutdown began, want %d", n, parked)
	}

	release := time.Now()
	staple := []byte(parkedStaple)
	mu.Lock()
	for _, cb := range pending {
		cb(nil, staple)
	}
	pending = nil
	mu.Unlock()
	select {
	case err := <-childDone:
		if err != nil {
			t.Fatalf("clients: %v\n%s", err, out.String())
		}
	case <-time.After(4 * time.Minute):
		child.Process.Kill()
		t.Fatal("the clients did not finish within 4 minutes of the release")
	}
	releaseTime := time.Since(release)
	if !bytes.Contains(out.Bytes(), []byte(fmt.Sprintf("PARKED-CLIENTS ok %d failed 0", parked))) {
		t.Fatalf("not every client got its staple:\n%s", out.String())
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d tlsClientError events", n)
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Shutdown did not return a minute after the last client")
	}
	after := settle(baseGoroutines)
	t.Logf("PARKED %d handshakes parked in %v: +%d goroutines (%.2f per handshake), +%d KiB heap (%.1f KiB per handshake), %d open files; "+
		"Shutdown begun, released and completed in %v; goroutines before %d after %d; VmHWM %s",
		parked, parkTime.Round(time.Millisecond), goroutines, float64(goroutines)/parked, heap>>10, float64(heap)/1024/parked, fds,
		releaseTime.Round(time.Millisecond), baseGoroutines, after, vmHWM())
	if per := float64(goroutines) / parked; per > 2.1 {
		t.Errorf("%.2f goroutines per parked handshake, want at most 2", per)
	}
	if after > baseGoroutines {
		t.Errorf("goroutines: %d before, %d after", baseGoroutines, after)
	}
}

// parkedClients is the child process: it starts every handshake, waits for
// all of them, and prints how many got the staple.
func parkedClients(t *testing.T, addr, caPath string) {
	raiseFileLimit(t, parked+100)
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cfg := &tls.Config{ServerName: "localhost", RootCAs: roots}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	dialing := make(chan struct{}, 256) // bounds connects in flight, not handshakes
	var wg sync.WaitGroup
	for range parked {
		wg.Add(1)
		dialing <- struct{}{}
		go func() {
			defer wg.Done()
			raw, err := net.DialTimeout("tcp", addr, 30*time.Second)
			<-dialing
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(8 * time.Minute))
			c := tls.Client(raw, cfg)
			if err := c.Handshake(); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			if string(c.ConnectionState().OCSPResponse) != parkedStaple {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Errorf("staple %q", c.ConnectionState().OCSPResponse))
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	fmt.Printf("PARKED-CLIENTS ok %d failed %d first error %v\n", ok.Load(), failed.Load(), firstErr.Load())
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func openFiles() int {
	ents, _ := os.ReadDir(filepath.Join("/proc", fmt.Sprint(os.Getpid()), "fd"))
	return len(ents)
}
