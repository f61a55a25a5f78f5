// Command benchtable prints tlsemit's benchmark table: every row a ratio
// between two things measured in the same run, the two measured in
// alternation. `make bench` runs it from the repository's root.
//
// Rows:
//   - events: Emit against olebedev/emitter and Node's EventEmitter, and
//     registration at scale (100,000 listeners or names) against Node's,
//     with its growth from 10,000;
//   - handshakes: server CPU per full TLS 1.3 handshake of tlsserver with an
//     'OCSPRequest' listener answering from memory, against plain
//     crypto/tls serving a static staple, and against Node's tls.Server with
//     the same listener; one Go load generator, a new TCP connection and
//     full handshake each time, the staple checked on every handshake;
//     tlsserver once with no metrics provider (the global no-op) and once
//     with the OpenTelemetry SDK and a manual reader; and tlsserver's
//     static crl: server CPU per mTLS handshake with a 1,000,000-entry
//     Options.CRL against none, and its check alone;
//   - ocspfetch: the cache hit, and the cost per certificate of stapling
//     1,000 and 16,000 certificates each on its first handshake;
//   - crl: loading and verifying a 1,000,000-entry CRL (34 MB) from DER
//     and from PEM against Node's tls.createSecureContext({ca, crl}) on the
//     same CRL and against crypto/x509.ParseRevocationList, the heap each
//     keeps over the CRL's size, and a serial's lookup;
//   - crlfetch: server CPU per mTLS handshake with a 1,000,000-entry CRL
//     checked in VerifyConnection against none, and the check alone;
//   - fleet (with redis-server): server CPU per resumed handshake with the
//     fleet's ticket keys against plain crypto/tls resumption, the latency
//     the Redis session store adds to a resumption, p50 and p99, and the
//     goroutines a handshake starts on each path (full and stapled from the
//     cache, resumed with fleet tickets, resumed through the session
//     store);
//   - statuspage: handshakes per second while 200 clients fetch a
//     10,000-certificate page, against the same server left alone.
//
// -handshakes-only measures the process rows of the handshakes alone (a
// quicker loop while working on tlsserver's hot path).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"time"
)

func main() {
	serveName := flag.String("serve", "", "internal: run one handshake server (crypto/tls, tlsserver or tlsserver+otel)")
	dir := flag.String("dir", "", "internal: the certificates for -serve")
	n := flag.Int("handshakes", 3000, "handshakes per server per round")
	rounds := flag.Int("rounds", 5, "rounds of alternation")
	concurrency := flag.Int("c", 8, "concurrent handshakes")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	handshakesOnly := flag.Bool("handshakes-only", false, "measure only the server CPU per handshake (the process rows), not the go test benchmarks")
	eventsOnly := flag.Bool("events", false, "only the events rows (no handshakes, no tlsserver or ocspfetch benchmarks)")
	flag.Parse()
	log.SetFlags(0)
	if *serveName != "" {
		if err := serve(*serveName, *dir); err != nil {
			log.Fatal(err)
		}
		return
	}
	haveNode := exec.Command("node", "--version").Run() == nil
	fmt.Printf("tlsemit benchmark table: %s, %d cores, %s/%s, %s\n",
		time.Now().UTC().Format(time.DateOnly), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	command := "make bench"
	switch {
	case *eventsOnly:
		command = "go run ./internal/cmd/benchtable -events"
	case *handshakesOnly:
		command = "go run ./internal/cmd/benchtable -handshakes-only"
	}
	fmt.Println("command:", command)
	fmt.Println()

	t := &table{eventsOnly: *eventsOnly}
	if !*handshakesOnly {
		if err := t.goBenchmarks(*benchtime, haveNode); err != nil {
			log.Fatal(err)
		}
	}
	if !*eventsOnly {
		if err := t.handshakeCPU(*n, *rounds, *concurrency, haveNode); err != nil {
			log.Fatal(err)
		}
	}
	t.print(os.Stdout)
}
