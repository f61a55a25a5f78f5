package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// measurement is one benchmark's result; a name measured in several rounds
// keeps every sample and reports the median.
type measurement struct {
	ns, allocs, bytes []float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

type table struct {
	m          map[string]*measurement
	order      []string
	eventsOnly bool // only the events package and rows
}

func (t *table) add(name string, ns, allocs, bytes float64) {
	if t.m == nil {
		t.m = map[string]*measurement{}
	}
	m, ok := t.m[name]
	if !ok {
		m = &measurement{}
		t.m[name] = m
		t.order = append(t.order, name)
	}
	m.ns = append(m.ns, ns)
	if allocs >= 0 {
		m.allocs = append(m.allocs, allocs)
		m.bytes = append(m.bytes, bytes)
	}
}

// goBenchmarks runs the Go benchmarks of the comparison rows in rounds,
// one run of each per round, so that A and B alternate; with withNode,
// Node's EventEmitter loop runs right after the events package in each
// round, so that the Go and Node figures of a row come from the same
// minutes of a shared machine.
func (t *table) goBenchmarks(benchtime string, withNode bool) error {
	pkgs := []struct{ pkg, pattern string }{
		{"./events/", "."},
		{"./ocspfetch/", "."},
		{"./tlsserver/", "."},
		{"./fleet/", "."}, // skipped (rows not measured) without redis-server
		{"./statuspage/", "BenchmarkStatusPageUnderLoad"},
		{"./internal/crl/", "."},
		{"./crlfetch/", "."},
	}
	if t.eventsOnly {
		pkgs = pkgs[:1]
	}
	for round := range 3 {
		for _, p := range pkgs {
			fmt.Fprintf(os.Stderr, "round %d: go test -bench %s %s\n", round+1, p.pattern, p.pkg)
			cmd := exec.Command("go", "test", "-run", "^$", "-bench", p.pattern, "-benchmem",
				"-benchtime", benchtime, "-count", "1", p.pkg)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("go test -bench %s: %v\n%s", p.pkg, err, out)
			}
			t.parseGo(bytes.NewReader(out))
			if p.pkg == "./events/" && withNode {
				if err := t.nodeEvents(); err != nil {
					return err
				}
			}
			if p.pkg == "./internal/crl/" && withNode {
				if err := t.nodeCRL(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// parseGo reads `go test -bench` lines: name-P  N  x ns/op  y B/op  z allocs/op
// and any custom metrics (unit ends in /op).
func (t *table) parseGo(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		ns, allocs, b := -1.0, -1.0, -1.0
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns = v
			case "allocs/op":
				allocs = v
			case "B/op":
				b = v
			default:
				t.add(name+" "+f[i+1], v, -1, -1)
			}
		}
		if ns >= 0 {
			t.add(name, ns, allocs, b)
		}
	}
}

// nodeEvents runs Node's EventEmitter loop once, which prints lines
// "BenchmarkNode... <ns>".
func (t *table) nodeEvents() error {
	fmt.Fprintln(os.Stderr, "node events/testdata/bench.js")
	out, err := exec.Command("node", "events/testdata/bench.js").Output()
	if err != nil {
		return fmt.Errorf("node events/testdata/bench.js: %v", err)
	}
	t.addNode(out)
	return nil
}

// addNode adds the "BenchmarkNode... <value>" lines of a Node script's
// output.
func (t *table) addNode(out []byte) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "BenchmarkNode") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			t.add(f[0], v, -1, -1)
		}
	}
}

// nodeCRL runs Node's tls.createSecureContext({ca, crl}) on the
// 1,000,000-entry CRL the Go benchmarks load, which prints
// "BenchmarkNodeCreateSecureContextCRL <ns>" and the memory it took.
func (t *table) nodeCRL() error {
	dir, err := os.MkdirTemp("", "benchtable-crl")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l := crltest.LargeCRL(testpki.Exit, 1_000_000) // the same, cached, CRL
	ca, crl := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "crl.pem")
	if err := errors.Join(os.WriteFile(ca, testpki.CertPEM(l.CA.DER), 0o600), os.WriteFile(crl, testpki.CRLPEM(l.DER), 0o600)); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "node internal/cmd/benchtable/node-crl.js")
	out, err := exec.Command("node", "--expose-gc", "internal/cmd/benchtable/node-crl.js", ca, crl, "5").Output()
	if err != nil {
		return fmt.Errorf("node internal/cmd/benchtable/node-crl.js: %v", err)
	}
	t.addNode(out)
	return nil
}

// handshakeCPU measures server CPU per handshake, the servers taking turns
// round by round.
func (t *table) handshakeCPU(n, rounds, concurrency int, withNode bool) error {
	dir, err := os.MkdirTemp("", "benchtable")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := newBenchPKI(dir)
	if err != nil {
		return err
	}
	names := []string{"crypto/tls", "tlsserver", "tlsserver+otel"}
	if withNode {
		names = append(names, "node")
	}
	servers := map[string]*serverProc{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, name := range names {
		s, err := startServer(name, dir)
		if err != nil {
			return err
		}
		servers[name] = s
		if err := handshakes(s.port, 200, concurrency, p); err != nil { // warm up
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	for round := range rounds {
		for i := range names {
			name := names[(i+round)%len(names)]
			s := servers[name]
			fmt.Fprintf(os.Stderr, "round %d: %d handshakes against %s\n", round+1, n, name)
			before, err := s.cpuTime()
			if err != nil {
				return err
			}
			if err := handshakes(s.port, n, concurrency, p); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			after, err := s.cpuTime()
			if err != nil {
				return err
			}
			t.add("HandshakeCPU/"+name, float64((after-before)/time.Nanosecond)/float64(n), -1, -1)
		}
	}
	return nil
}

// row is one line of the table: A against B with a target for A/B (or
// B/A, when A should be faster by a factor), or, with no B, A alone against
// an absolute target.
type row struct {
	group, label string
	a, b         string
	target       float64 // 0: none
	invert       bool    // the target is B/A at least
	allocs       float64 // A's allocs/op at most; -1: no target
}

var rows = []row{
	{"events", "Emit, 1 listener, 0 args vs Node", "BenchmarkEmit1Listener0Args", "BenchmarkNodeEmit1Listener0Args", 1.5, false, 1},
	{"events", "Emit, 1 listener, 2 args vs Node", "BenchmarkEmit1Listener2Args", "BenchmarkNodeEmit1Listener2Args", 1.5, false, 1},
	{"events", "Emit, 10 listeners vs Node", "BenchmarkEmit10Listeners", "BenchmarkNodeEmit10Listeners", 0, false, -1},
	{"events", "Emit, 0 listeners vs Node", "BenchmarkEmit0Listeners", "BenchmarkNodeEmit0Listeners", 0, false, 0},
	{"events", "On+Off, the event's only listener, vs Node", "BenchmarkOnOffOnlyListener", "BenchmarkNodeOnOffOnlyListener", 2, false, 1},
	{"events", "On+Off beside a permanent listener vs Node", "BenchmarkOnOff", "BenchmarkNodeOnOff", 0, false, -1},
	{"events", "Emit, 1 listener: olebedev slower by", "BenchmarkEmit1Listener0Args", "BenchmarkOlebedevEmit1Listener0Args", 20, true, -1},
	{"events", "Emit, 1 listener, 2 args: olebedev slower by", "BenchmarkEmit1Listener2Args", "BenchmarkOlebedevEmit1Listener2Args", 20, true, -1},
	{"events", "Emit, 10 listeners: olebedev slower by", "BenchmarkEmit10Listeners", "BenchmarkOlebedevEmit10Listeners", 0, true, -1},
	{"events", "on('x') × 100,000 vs Node", "BenchmarkScaleOnOneEvent/n=100000", "BenchmarkNodeScaleOnOneEvent/n=100000", 3, false, -1},
	{"events", "on(name) × 100,000 distinct names vs Node", "BenchmarkScaleDistinctNames/n=100000", "BenchmarkNodeScaleDistinctNames/n=100000", 3, false, -1},
	{"events", "remove newest-first × 100,000 vs Node", "BenchmarkScaleOffNewestFirst/n=100000", "BenchmarkNodeScaleOffNewestFirst/n=100000", 3, false, -1},
	{"events", "once('reply:'+i), emit, 100,000 ids vs Node", "BenchmarkScaleOnceReply/n=100000", "BenchmarkNodeScaleOnceReply/n=100000", 3, false, -1},
	{"events", "on('x'): 100,000 vs 10,000 (linear 10)", "BenchmarkScaleOnOneEvent/n=100000", "BenchmarkScaleOnOneEvent/n=10000", 25, false, -1},
	{"events", "distinct names: 100,000 vs 10,000", "BenchmarkScaleDistinctNames/n=100000", "BenchmarkScaleDistinctNames/n=10000", 25, false, -1},
	{"events", "remove newest-first: 100,000 vs 10,000", "BenchmarkScaleOffNewestFirst/n=100000", "BenchmarkScaleOffNewestFirst/n=10000", 25, false, -1},
	{"events", "once('reply:'+i), emit: 100,000 vs 10,000", "BenchmarkScaleOnceReply/n=100000", "BenchmarkScaleOnceReply/n=10000", 25, false, -1},
	{"tlsserver", "server CPU/handshake (process) vs crypto/tls + static staple", "HandshakeCPU/tlsserver", "HandshakeCPU/crypto/tls", 1.03, false, -1},
	{"tlsserver", "server CPU/handshake (process) vs Node tls.Server", "HandshakeCPU/tlsserver", "HandshakeCPU/node", 0.6, false, -1},
	{"tlsserver", "server CPU/handshake (process), OTel SDK installed, vs crypto/tls", "HandshakeCPU/tlsserver+otel", "HandshakeCPU/crypto/tls", 0, false, -1},
	{"tlsserver", "server goroutine CPU/handshake (net.Pipe) vs crypto/tls", "BenchmarkHandshakeOCSP tlsserver-server-ns/hs", "BenchmarkHandshakeOCSP plain-server-ns/hs", 1.03, false, -1},
	{"tlsserver", "server goroutine CPU/handshake (net.Pipe), OTel SDK installed, vs crypto/tls", "BenchmarkHandshakeOCSPMetrics tlsserver-server-ns/hs", "BenchmarkHandshakeOCSPMetrics plain-server-ns/hs", 0, false, -1},
	{"tlsserver", "heap per connection beyond crypto/tls (B)", "BenchmarkMemoryPerConnection extra-B/conn", "", 2048, false, -1},
	{"tlsserver", "server goroutine CPU/mTLS handshake, Options.CRL of 1,000,000 entries vs none (net.Pipe)", "BenchmarkHandshakeStaticCRL crl-server-ns/hs", "BenchmarkHandshakeStaticCRL plain-server-ns/hs", 1.03, false, -1},
	{"tlsserver", "Options.CRL check of client and CA in VerifyConnection, 1,000,000 entries (ns)", "BenchmarkCRLVerifyConnection", "", 0, false, 0},
	{"ocspfetch", "cache-hit OCSPRequest (ns)", "BenchmarkOCSPRequestHit", "", 200, false, 0},
	{"ocspfetch", "first requests, ns/cert: 16,000 vs 1,000 certificates", "BenchmarkFirstRequests/certs=16000 ns/cert", "BenchmarkFirstRequests/certs=1000 ns/cert", 2, false, -1},
	{"crl", "load+verify a 1,000,000-entry CRL (34 MB DER) vs Node createSecureContext({ca, crl})", "BenchmarkCRLLoad/der", "BenchmarkNodeCreateSecureContextCRL", 0.3, false, -1},
	{"crl", "load+verify the same CRL from PEM (Node's input) vs Node", "BenchmarkCRLLoad/pem", "BenchmarkNodeCreateSecureContextCRL", 0.3, false, -1},
	{"crl", "load+verify: crypto/x509.ParseRevocationList slower by", "BenchmarkCRLLoad/der", "BenchmarkCRLLoad/x509", 0, true, -1},
	{"crl", "heap kept / DER size, loaded from DER", "BenchmarkCRLLoad/der heap-kept/DER", "", 2, false, -1},
	{"crl", "heap kept / DER size, loaded from PEM", "BenchmarkCRLLoad/pem heap-kept/DER", "", 2, false, -1},
	{"crl", "heap kept / DER size, crypto/x509", "BenchmarkCRLLoad/x509 heap-kept/DER", "", 0, false, -1},
	{"crl", "serial lookup, 1,000,000 entries (ns)", "BenchmarkCRLLookup/hot", "", 100, false, 0},
	{"crl", "serial lookup, 65,536 serials in turn, mostly out of cache (ns)", "BenchmarkCRLLookup/spread", "", 0, false, 0},
	{"crlfetch", "server CPU/mTLS handshake with a 1,000,000-entry CRL vs without (net.Pipe)", "BenchmarkHandshakeCRL crlfetch-server-ns/hs", "BenchmarkHandshakeCRL plain-server-ns/hs", 1.03, false, -1},
	{"crlfetch", "Check of client and CA against a 1,000,000-entry CRL (ns)", "BenchmarkCheckCRL", "", 0, false, 0},
	{"fleet", "server CPU/resumed handshake: fleet tickets vs crypto/tls", "BenchmarkResumedHandshake fleet-server-ns/resumption", "BenchmarkResumedHandshake crypto/tls-server-ns/resumption", 1.05, false, -1},
	{"fleet", "session store: latency added to a resumption, p50 (µs)", "BenchmarkSessionStoreLatency added-p50-µs", "", 150, false, -1},
	{"fleet", "session store: latency added to a resumption, p99 (µs)", "BenchmarkSessionStoreLatency added-p99-µs", "", 0, false, -1},
	{"fleet", "session store: two plain Redis round trips (the floor of its two waited calls), p50 (µs)", "BenchmarkSessionStoreLatency two-round-trips-p50-µs", "", 0, false, -1},
	{"fleet", "goroutines started per handshake: crypto/tls, one per connection (floor)", "BenchmarkGoroutinesPerHandshake/crypto/tls goroutines/handshake", "", 0, false, -1},
	{"fleet", "goroutines started per handshake: full, stapled from the cache", "BenchmarkGoroutinesPerHandshake/full_stapled goroutines/handshake", "", 2, false, -1},
	{"fleet", "goroutines started per handshake: resumed, fleet tickets", "BenchmarkGoroutinesPerHandshake/resumed_tickets goroutines/handshake", "", 2, false, -1},
	{"fleet", "goroutines started per handshake: resumed, session store", "BenchmarkGoroutinesPerHandshake/resumed_session_store goroutines/handshake", "", 2, false, -1},
	{"statuspage", "handshakes/s: alone vs while 200 clients fetch a 10,000-certificate page", "BenchmarkStatusPageUnderLoad alone-hs/s", "BenchmarkStatusPageUnderLoad hammered-hs/s", 0.9, true, -1},
	{"statuspage", "that page's latency under the 200 clients, p50 (ms)", "BenchmarkStatusPageUnderLoad page-p50-ms", "", 0, false, -1},
}

func (t *table) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "group\tcomparison (A vs B)\tA\tB\tratio\ttarget\tA allocs/op\tmet\t")
	for _, r := range rows {
		if t.eventsOnly && r.group != "events" {
			continue
		}
		a, b := t.m[r.a], t.m[r.b]
		if a == nil || (r.b != "" && b == nil) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\tnot measured\t\n", r.group, r.label, status(a), status(b))
			continue
		}
		an := median(a.ns)
		value, bText, ratioText := an, "-", "-"
		if b != nil {
			bn := median(b.ns)
			bText = fmt.Sprintf("%.1f", bn)
			value = an / bn
			if r.invert {
				value = bn / an
			}
			ratioText = fmt.Sprintf("%.3f", value)
		}
		target, met := "-", "-"
		if r.target > 0 {
			what := "A"
			switch {
			case b != nil && r.invert:
				what = "B/A"
			case b != nil:
				what = "A/B"
			}
			if r.invert {
				target = fmt.Sprintf("%s ≥ %.3g", what, r.target)
				met = yesNo(value >= r.target)
			} else {
				target = fmt.Sprintf("%s ≤ %.3g", what, r.target)
				met = yesNo(value <= r.target)
			}
		}
		allocs := "-"
		if len(a.allocs) > 0 {
			al := median(a.allocs)
			allocs = fmt.Sprintf("%.0f", al)
			if r.allocs >= 0 {
				allocs += fmt.Sprintf(" (≤ %.0f)", r.allocs)
				if al > r.allocs {
					met = "NO"
				} else if met == "-" {
					met = "yes"
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", r.group, r.label, an, bText, ratioText, target, allocs, met)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "all measurements (median of rounds; ns/op unless a unit is named):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "name\tvalue\tB/op\tallocs/op\t")
	for _, name := range t.order {
		m := t.m[name]
		if len(m.allocs) > 0 {
			fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.0f\t\n", name, median(m.ns), median(m.bytes), median(m.allocs))
		} else {
			fmt.Fprintf(tw, "%s\t%.1f\t-\t-\t\n", name, median(m.ns))
		}
	}
	tw.Flush()
}

func status(m *measurement) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", median(m.ns))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
