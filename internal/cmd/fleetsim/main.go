// Command fleetsim is `make fleetsim`: it runs fleets of M members (10, 30
// and 60 by default) on one local redis-server, under a bounded load of
// handshakes spread over the members (half of them resumptions on another
// member than the session's) with certificates whose OCSP answers live a
// few seconds, then hangs Redis (SIGSTOP) for a few seconds during a
// staple-refresh wave. For each M it prints every figure of the load model
// of docs/fleet.md beside the one measured: Redis commands (counted by a
// hook on every member's client, by feature), bytes in Redis, connections,
// responder requests, resumptions, handshakes that waited.
//
// Everything runs in this process but Redis; each member has its own Redis
// client, Fleet, Fetcher and server, as a process of a real fleet would.
// The load is bounded (-rate handshakes a second), and so is the time: by
// default about 40 s per fleet size.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type config struct {
	members  []int
	certs    int
	rate     int           // handshakes a second, all members together
	resume   float64       // the share of handshakes that resume a session on another member
	validity time.Duration // of the OCSP answers
	steady   time.Duration // the measured window without faults
	hang     time.Duration // Redis hung (SIGSTOP) during a refresh wave; 0: none
	period   time.Duration // TicketKeyPeriod
	lifetime time.Duration // TicketLifetime
}

func main() {
	var cfg config
	members := flag.String("members", "10,30,60", "fleet sizes to run, one after another")
	flag.IntVar(&cfg.certs, "certs", 100, "certificates every member serves (by SNI)")
	flag.IntVar(&cfg.rate, "rate", 100, "handshakes a second, over all members")
	flag.Float64Var(&cfg.resume, "resume", 0.5, "share of handshakes that resume a session on another member")
	flag.DurationVar(&cfg.validity, "validity", 30*time.Second, "lifetime of the OCSP answers (a refresh wave every half of it); a hang must fit in the two fifths between a refresh and the end of service less a tenth")
	flag.DurationVar(&cfg.steady, "steady", 20*time.Second, "measured window without faults")
	flag.DurationVar(&cfg.hang, "hang", 5*time.Second, "Redis hung (SIGSTOP) during a refresh wave; 0 for none")
	flag.DurationVar(&cfg.period, "ticket-period", time.Minute, "TicketKeyPeriod")
	flag.DurationVar(&cfg.lifetime, "ticket-lifetime", 5*time.Minute, "TicketLifetime")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("fleetsim: ")
	for _, s := range strings.Split(*members, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || m < 2 {
			log.Fatalf("-members: %q is not a fleet size of at least 2", s)
		}
		cfg.members = append(cfg.members, m)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		log.Fatal("needs redis-server (Debian package redis-server)")
	}
	redis.SetLogger(quietLogger{}) // dial failures during the hang are expected
	start := time.Now()
	for _, m := range cfg.members {
		r, err := run(cfg, m)
		if err != nil {
			log.Fatal(err)
		}
		r.print(os.Stdout, cfg)
	}
	fmt.Printf("fleetsim: done in %v\n", time.Since(start).Round(time.Second))
}
