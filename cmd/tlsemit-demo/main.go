// Command tlsemit-demo shows tlsemit end to end on one machine, with
// nothing to configure: a throwaway PKI, a local OCSP responder and CRL
// host, a tlsserver.Server with ocspfetch stapling for it and crlfetch
// checking client certificates, and clients that check what they were
// stapled. Every server event is printed as it happens.
//
//	go run ./cmd/tlsemit-demo              # the scripted tour, then exit
//	go run ./cmd/tlsemit-demo -serve 127.0.0.1:8443   # keep serving until Ctrl-C
//
// In serve mode it also serves its status page (package statuspage) on a
// loopback listener of its own (-status) and prints its URL.
//
// The tour: a cold handshake (ocspfetch asks the responder), a warm one
// (the staple comes from memory), a resumed one (no 'OCSPRequest' at all),
// Node's tls.connect when node is installed; two clients with client
// certificates, the revoked one refused with CERT_REVOKED (crlfetch's
// VerifyConnection on the server's Config); a served certificate with no
// OCSP responder, only a CRL distribution point, whose revocation
// ocspfetch learns from its CRL (the status page shows it); then the
// certificate is revoked at the responder, ocspfetch's background refresh
// sees it, and the next handshake goes on without a staple.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.serveAddr, "serve", "", "after the tour, keep serving on `ADDR` (e.g. 127.0.0.1:8443) until Ctrl-C")
	flag.StringVar(&cfg.statusAddr, "status", "127.0.0.1:0", "in serve mode, serve the status page on `ADDR` (keep it internal)")
	flag.BoolVar(&cfg.noNode, "no-node", false, "skip the Node.js client even when node is installed")
	flag.DurationVar(&cfg.validity, "validity", 6*time.Second, "lifetime of the responder's answers (ocspfetch refreshes at the midpoint)")
	fleetMode := flag.Bool("fleet", false, "instead of the tour, run three fleet members sharing a local redis-server (make fleet)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tour := run
	if *fleetMode {
		tour = runFleet
	}
	if err := tour(ctx, cfg, newTracer(os.Stdout)); err != nil {
		fmt.Fprintln(os.Stderr, "tlsemit-demo:", err)
		os.Exit(1)
	}
}
