package fleet_test

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Ticket keys rotate every TicketKeyPeriod on every member at once, and a
// ticket stays resumable on any member for TicketLifetime, not longer. The
// fleet's clock is a fake one: hours of slots pass in milliseconds.
func TestTicketKeyRotation(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	const period, life = time.Hour, 2 * time.Hour
	clk := fleet.NewFakeClock(time.Now().Truncate(period).Add(period / 2))
	var ms []*member
	for range 3 {
		ms = append(ms, startMember(t, rdb, memberOptions{
			cert: cert, clock: clk, fleet: fleet.Options{TicketKeyPeriod: period, TicketLifetime: life},
		}))
	}
	var fls []*fleet.Fleet
	for _, m := range ms {
		fls = append(fls, m.fl)
	}
	poll := func() { polls(t, clk, period/4+period/10, fls...) }
	same := func(what string) []byte {
		t.Helper()
		k := ms[0].srv.TicketKeys()
		agree(t, what, k, ms[1:]...)
		return k
	}

	// Early in a fresh slot, a client takes a ticket.
	crossTo(t, clk, period, ms...)
	first := same("in a fresh slot")
	c := newClient(ca, tls.VersionTLS13)
	c.connect(t, ms[0].addr)
	old := c.cfg.ClientSessionCache

	// Every member switches at the boundary, to one new key.
	poll()
	crossTo(t, clk, period, ms...)
	if bytes.Equal(same("after the boundary"), first) {
		t.Fatal("the key did not change at the boundary")
	}
	// A ticket from one period ago still resumes, on another member (a
	// client with a copy of the old ticket, so that it can be used again
	// below).
	c2 := newClient(ca, tls.VersionTLS13)
	c2.cfg.ClientSessionCache = old
	if !c2.connect(t, ms[1].addr) {
		t.Fatal("a ticket one period old did not resume on another member")
	}

	// A ticket older than TicketLifetime (plus the period it was issued
	// in) no longer resumes.
	c3 := newClient(ca, tls.VersionTLS13)
	c3.connect(t, ms[2].addr)
	expired := newClient(ca, tls.VersionTLS13)
	expired.cfg.ClientSessionCache = c3.cfg.ClientSessionCache
	for range int((life + 2*period) / period) {
		poll()
		crossTo(t, clk, period, ms...)
	}
	same("hours later")
	if expired.connect(t, ms[0].addr) {
		t.Fatal("a ticket older than TicketLifetime resumed")
	}
}
