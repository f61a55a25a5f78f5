package main

import (
	"bytes"
	"context"
	"encoding/json"
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
		`crl host\s+publishing "tlsemit demo CA"'s CRL \(number 1, 2 revoked\)`,
		`'listening' on 127\.0\.0\.1:\d+`,
		`'OCSPRequest' cert "localhost" .*issuer "tlsemit demo CA"`,
		`responder\s+answered good`,
		`go client #1: TLS 1\.3, staple verified: good`,
		`go client #2: TLS 1\.3, staple verified: good`,
		`'resumeSession' id [0-9a-f]+…, found true`,
		`'secureConnection' TLS 1\.3, resumed true`,
	}
	if _, err := exec.LookPath("node"); err == nil || requireNode {
		want = append(want, `node tls\.connect \(authorized true\): TLSv1\.3, staple verified: good`)
	}
	want = append(want,
		// A revoked client certificate refused with CERT_REVOKED.
		`== 7\. client certificates, checked against the CA's CRL by crlfetch's VerifyConnection`,
		`crlfetch\s+fetched http://127\.0\.0\.1:\d+/ca\.crl: number 1, 2 revoked`,
		`client with a good certificate: HTTP 200 OK "hello from tlsemit"`,
		`server\s+'tlsClientError' crl: certificate revoked: CN=revoked client, serial [0-9A-F]+ \(depth 0\) \(code CERT_REVOKED\)`,
		`demo\s+'tlsClientError' said CERT_REVOKED`,
		// A served certificate's revocation learned from its CRL.
		`== 8\. a served certificate without OCSP`,
		`'OCSPRequest' cert "crl-only\.localhost"`,
		`ocspfetch\s+revoked for serial ([0-9A-F]+) \(from its CRL\).*certificate revoked: listed in its CRL http://127\.0\.0\.1:\d+/ca\.crl`,
		`demo\s+the status page shows crl-only\.localhost Revoked, from its CRL`,
		// OCSP revocation seen by a refresh.
		`responder\s+serial [0-9A-F]+ is now revoked`,
		`ocspfetch\s+revoked for serial [0-9A-F]+ \(thisUpdate`,
		`go client #3: TLS 1\.3, no staple`,
		`== done: every step behaved as expected`,
	)
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
	// The revoked client learns it from the alert (in TLS 1.3, on its
	// first read), and nothing for crl-only.localhost was stapled.
	for _, w := range []string{
		`client with a revoked certificate: refused: remote error: tls: bad certificate`,
		`client of crl-only\.localhost: TLS 1\.3, no staple`,
	} {
		if !regexp.MustCompile(w).MatchString(trace) {
			t.Errorf("demo trace lacks %q:\n%s", w, trace)
		}
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
	// And crl-only.localhost revoked, learned from its CRL, which the
	// CRL table shows with its two entries.
	var page struct {
		Fetchers []struct {
			Certificates []struct {
				Names          []string
				Source, Status string
				Stapled        bool
			}
		}
		CRLFetchers []struct {
			CRLs []struct {
				Source, State string
				Entries       int
			}
		} `json:"crl_fetchers"`
	}
	if err := json.Unmarshal(got, &page); err != nil || len(page.Fetchers) != 1 || len(page.CRLFetchers) != 1 {
		t.Fatalf("status page JSON: %v\n%s", err, got)
	}
	found := false
	for _, c := range page.Fetchers[0].Certificates {
		if c.Names[0] == "crl-only.localhost" {
			found = c.Source == "crl" && c.Status == "revoked" && !c.Stapled
		}
	}
	if crls := page.CRLFetchers[0].CRLs; !found || len(crls) != 1 || crls[0].State != "held" || crls[0].Entries != 2 || !strings.HasSuffix(crls[0].Source, "/ca.crl") {
		t.Errorf("status page: crl-only.localhost not revoked from its CRL, or the CRL not shown:\n%s", got)
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
