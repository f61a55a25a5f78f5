package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlsemit/tlsemit/fleet"
)

// The model of docs/fleet.md ("Load at scale"), as functions of the
// configuration, to print beside what was measured.

// stapleCmdsPerRefresh: the member that asks the responder reads the
// store, takes the lock, reads again, stores and unlocks (5); each other
// member reads once and adopts (m-1).
func stapleCmdsPerRefresh(m int) float64 { return float64(m + 4) }

// earlyShare is how much before half its lifetime an answer is refreshed,
// as a share of that half: ocspfetch refreshes at half the lifetime ±5 %
// of it, uniformly, and the earliest of m members asks for all; the
// expected minimum of m uniform draws on [-1, 1] is -1 + 2/(m+1).
func earlyShare(m int) float64 { return (0.05 - 0.1/float64(m+1)) / 0.5 }

// ticketCmdsPerMinute: one pipeline a poll, SET NX for the current and
// next slots and a GETRANGE for each kept slot, those two included; a
// poll every min(period/4, 1 min), but for the one the slot boundary
// replaces (the member switches keys then, without Redis).
func ticketCmdsPerMinute(cfg config) float64 {
	poll := min(cfg.period/4, time.Minute)
	kept := int((cfg.lifetime + cfg.period - 1) / cfg.period)
	polls := float64((cfg.period+poll-1)/poll - 1)
	return polls / cfg.period.Minutes() * float64(2+kept+2)
}

// sessionCmdsPerHandshake: a SET for every handshake that issues a session
// (every one, resumed or not, in TLS 1.3), a GETRANGE for every resumption.
func sessionCmdsPerHandshake(resumptions float64) float64 { return 1 + resumptions }

// Session bytes, TLS 1.3 without a client certificate: the key (prefix,
// "session:", 64 hex digits: 80 bytes), the sealed value (41 bytes of
// version, nonce and tag around tls.SessionState.Bytes with tlsemit's
// record, about 90), and Redis's own per-key overhead (MEMORY USAGE counts
// the key's entry, the value's object and its expiry: about 85).
const (
	modelSessionValue = 41 + 90
	modelSessionUsage = 80 + modelSessionValue + 85
)

// waitedInHang is how many handshakes wait OpTimeout once when Redis
// hangs: on each member, those that call Redis before the first call
// times out (the member's share of the rate, for OpTimeout), and then
// none (calls are skipped while a prober asks Redis).
func waitedInHang(cfg config, m int) float64 {
	return float64(cfg.rate)*fleet.OpTimeout.Seconds() + float64(m)
}

func (r *result) print(w io.Writer, cfg config) {
	fmt.Fprintf(w, "\n%d members, %d certificates, %d handshakes/s (%.0f %% resumptions on another member), OCSP answers valid %v, ticket keys every %v kept %v; %v measured\n",
		r.m, cfg.certs, cfg.rate, 100*cfg.resume, cfg.validity, cfg.period, cfg.lifetime, r.window)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmodel\tmeasured\t")
	row := func(name, model, measured string) { fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, model, measured) }
	perRefresh := func(n int64) string {
		if r.waves == 0 {
			return "no refresh measured"
		}
		return fmt.Sprintf("%.1f", float64(n)/float64(r.waves))
	}
	row("responder requests per certificate per refresh", "1", fmt.Sprintf("%s (%d requests, %d refreshes)", perRefresh(int64(r.requests)), r.requests, r.waves))
	row("Redis commands per certificate per refresh (staples)", fmt.Sprintf("M+4 = %.0f", stapleCmdsPerRefresh(r.m)), perRefresh(r.stapleCmds))
	var by []string
	for _, name := range []string{"GETRANGE", "SET", "EVALSHA", "EVAL", "DEL"} {
		if n, ok := r.stapleByCmd[name]; ok {
			by = append(by, name+" "+perRefresh(n))
		}
	}
	row("  by command (SET: the lock and the staple)", fmt.Sprintf("GETRANGE M+1, SET 2, EVALSHA 1"), strings.Join(by, ", "))
	early := "-"
	if len(r.beforeHalf) > 0 {
		var sum float64
		for _, b := range r.beforeHalf {
			sum += b
		}
		early = fmt.Sprintf("%.1f %% (mean of %d)", 100*sum/float64(len(r.beforeHalf)), len(r.beforeHalf))
	}
	row("refresh before half-life (share of the half)", fmt.Sprintf("%.1f %%", 100*earlyShare(r.m)), early)
	row("session in Redis (MEMORY USAGE)", fmt.Sprintf("≈ %d B", modelSessionUsage), fmt.Sprintf("%.0f B", r.sessionUsage))
	row("  of which the sealed value", fmt.Sprintf("≈ %d B", modelSessionValue), fmt.Sprintf("%.0f B", r.value))
	share := float64(r.resumeTried) / float64(max(r.handshakes, 1)) // a client's first handshake is full
	row("session commands per handshake", fmt.Sprintf("1 + resumptions share (%.2f) = %.2f", share, sessionCmdsPerHandshake(share)),
		fmt.Sprintf("%.2f", float64(r.sessionCmds)/float64(max(r.handshakes, 1))))
	row("ticket-key commands per member per minute", fmt.Sprintf("%.0f", ticketCmdsPerMinute(cfg)),
		fmt.Sprintf("%.1f", float64(r.ticketCmds)/float64(r.m)/r.window.Minutes()))
	row("Redis connections per member", fmt.Sprintf("its peak concurrent calls, ≤ PoolSize = %d", 10*runtime.GOMAXPROCS(0)),
		fmt.Sprintf("%.1f open, %.1f opened", r.conns, r.dials))
	row("cross-member resumptions", "100 %", fmt.Sprintf("%.1f %% (%d of %d)", 100*float64(r.resumed)/float64(max(r.resumeTried, 1)), r.resumed, r.resumeTried))
	if r.hung {
		mean, most := 0.0, 0
		for _, n := range r.hangRequests {
			mean += float64(n)
			most = max(most, n)
		}
		if len(r.hangRequests) > 0 {
			mean /= float64(len(r.hangRequests))
		}
		row(fmt.Sprintf("Redis hung %v in a wave: responder requests per certificate", cfg.hang), "≤ 2 (1)",
			fmt.Sprintf("%.2f, at most %d (%d certificates due in the hang)", mean, most, r.hangCerts))
		row("  handshakes that waited OpTimeout or more", fmt.Sprintf("≈ rate × OpTimeout + M = %.0f", waitedInHang(cfg, r.m)),
			fmt.Sprintf("%d of %d", r.hangWaited, r.hangHandshakes))
		row("  probe commands (PING)", fmt.Sprintf("≤ 2 features × M × %.0f s = %.0f", cfg.hang.Seconds(), 2*float64(r.m)*cfg.hang.Seconds()), fmt.Sprint(r.hangProbeCommands))
	}
	tw.Flush()
	if len(r.failed) > 0 {
		fmt.Fprintf(w, "FAILED handshakes: %d (first: %v)\n", len(r.failed), r.failed[0])
	} else {
		fmt.Fprintln(w, "every handshake succeeded")
	}
}
