package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
)

// TestDemoBinary builds and runs the demo as `make demo` does and checks its
// trace, so that the README's first command cannot rot.
func TestDemoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	requireNode := testenv.CI()
	bin := filepath.Join(t.TempDir(), "tlsemit-demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed after %v: %v\n%s", time.Since(start), err, out)
	}
	trace := string(out)
	// The steps, in order, with what each must show.
	want := []string{
		`'listening' on 127\.0\.0\.1:\d+`,
		`'OCSPRequest' cert "localhost" .*issuer "tlsemit demo CA"`,
		`responder\s+answered good`,
		`go client #1: TLS 1\.3, staple verified: good`,
		`go client #2: TLS 1\.3, staple verified: good`,
		`'resumeSession' id [0-9a-f]+…, found true`,
		`'secureConnection' TLS 1\.3, resumed true`,
		`responder\s+serial [0-9A-F]+ is now revoked`,
		`ocspfetch\s+revoked for serial`,
		`go client #3: TLS 1\.3, no staple`,
		`== done: every step behaved as expected`,
	}
	if _, err := exec.LookPath("node"); err == nil || requireNode {
		want = append(want[:7:7], append([]string{`node tls\.connect \(authorized true\): TLSv1\.3, staple verified: good`}, want[7:]...)...)
	}
	pos := 0
	for _, w := range want {
		loc := regexp.MustCompile(w).FindStringIndex(trace[pos:])
		if loc == nil {
			t.Fatalf("demo trace lacks %q after offset %d:\n%s", w, pos, trace)
		}
		pos += loc[1]
	}
	// Between the warm handshake and the revocation the responder is asked
	// nothing: the staple comes from memory.
	if n := strings.Count(trace, "answered good"); n != 1 {
		t.Errorf("responder answered good %d times, want once (later handshakes use the cache):\n%s", n, trace)
	}
	if strings.Contains(trace, "\x1b[") {
		t.Error("colour codes written to a pipe")
	}
}

// syncBuffer collects the tracer's output from many goroutines.
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

// TestServeModeLinesWork runs the demo with -serve, pastes the curl line it
// prints into a shell, and checks that curl accepts the staple; then
// Ctrl-C (here: the context) shuts it down gracefully.
func TestServeModeLinesWork(t *testing.T) {
	testenv.RequireTool(t, "curl")
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{serveAddr: "127.0.0.1:0", noNode: true, validity: time.Minute}, newTracer(&out))
	}()
	curlLine := regexp.MustCompile(`(?m)^  (curl --cert-status .*)$`)
	deadline := time.Now().Add(20 * time.Second)
	var line string
	for line == "" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no curl line printed:\n%s", out.String())
		}
		if m := curlLine.FindStringSubmatch(out.String()); m != nil {
			line = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := exec.Command("sh", "-c", line+" -sS --max-time 10").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "hello from tlsemit" {
		t.Errorf("%s\n=> %v: %s", line, err, got)
	}
	// The status page it prints shows the certificate stapled Good.
	m := regexp.MustCompile(`(?m)^status page .*: (http://127\.0\.0\.1:\d+/debug/tlsemit/)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no status page URL printed:\n%s", out.String())
	}
	got, err = exec.Command("curl", "-sS", "--max-time", "10", "-H", "Accept: application/json", m[1]).CombinedOutput()
	if err != nil || !regexp.MustCompile(`"status": "good",\s+"stapled": true`).Match(got) || !strings.Contains(string(got), `"localhost"`) {
		t.Errorf("status page %s => %v:\n%s", m[1], err, got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not shut down")
	}
	if !strings.Contains(out.String(), "== shutting down") || !strings.Contains(out.String(), "'close'") {
		t.Errorf("no graceful shutdown in the trace:\n%s", out.String())
	}
}

// TestFleetBinary runs `make fleet`'s program and checks its trace: one
// responder request for three members, resumption across members with
// tickets (TLS 1.3 and 1.2) and with the session store, and during a Redis
// outage.
func TestFleetBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	testenv.RequireTool(t, "redis-server")
	bin := filepath.Join(t.TempDir(), "tlsemit-demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-fleet").CombinedOutput()
	if err != nil {
		t.Fatalf("make fleet's program failed: %v\n%s", err, out)
	}
	trace := string(out)
	want := []string{
		`redis\s+redis-server on 127\.0\.0\.1:\d+`,
		`responder\s+answered good .*\(request #1\)`,
		`first client of member [ABC] → member [ABC]: TLS 1\.3, staple verified: good`,
		`demo\s+responder requests so far: 1, for 3 members`,
		`roaming client → member A: TLS 1\.3, staple verified: good`,
		`member B\s+'secureConnection' TLS 1\.3, resumed true`,
		`member C\s+'secureConnection' TLS 1\.3, resumed true`,
		`roaming client → member A: TLS 1\.2, staple verified: good`,
		`member B\s+'secureConnection' TLS 1\.2, resumed true`,
		`member C\s+'secureConnection' TLS 1\.2, resumed true`,
		`member B\s+'resumeSession': the session is read from Redis`,
		`session-store client → member C: TLS 1\.3, resumed`,
		`redis\s+tlsemit:session:[0-9a-f]{64}`,
		`== 6\. Redis stopped`,
		`client during the outage → member C: TLS 1\.3, resumed`,
		`== done: 1 responder request for 1 certificate and 3 members`,
	}
	pos := 0
	for _, w := range want {
		loc := regexp.MustCompile(w).FindStringIndex(trace[pos:])
		if loc == nil {
			t.Fatalf("fleet trace lacks %q after offset %d:\n%s", w, pos, trace)
		}
		pos += loc[1]
	}
	if regexp.MustCompile(`responder\s+answered .*\(request #2\)`).MatchString(trace) {
		t.Fatalf("the responder was asked twice:\n%s", trace)
	}
}
