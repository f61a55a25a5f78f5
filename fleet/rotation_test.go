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
// ticket stays resumable on any member for TicketLifetime, not longer.
func TestTicketKeyRotation(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	const period, life = time.Second, 2 * time.Second
	var ms []*member
	for range 3 {
		ms = append(ms, startMember(t, rdb, memberOptions{
			cert: cert, fleet: fleet.Options{TicketKeyPeriod: period, TicketLifetime: life},
		}))
	}
	// Wait for a fresh slot, so that the ticket is issued early in it.
	time.Sleep(time.Until(time.Now().Truncate(period).Add(period + 50*time.Millisecond)))
	c := newClient(ca, tls.VersionTLS13)
	c.connect(t, ms[0].addr)
	first := ms[0].srv.TicketKeys()

	// Every member encrypts with the same key, and it changes each period.
	sameKeys := func() bool {
		k := ms[0].srv.TicketKeys()
		for _, m := range ms[1:] {
			if !bytes.Equal(m.srv.TicketKeys(), k) {
				return false
			}
		}
		return true
	}
	if !sameKeys() {
		t.Fatal("members encrypt with different keys")
	}
	time.Sleep(period + 100*time.Millisecond)
	if bytes.Equal(ms[0].srv.TicketKeys(), first) {
		t.Fatal("the encrypting key did not change after a period")
	}
	if !sameKeys() {
		t.Fatal("after the boundary members encrypt with different keys")
	}
	// A ticket from one period ago still resumes, on another member: a
	// fresh client with a copy of the old ticket would be needed to test
	// again, so test the old ticket once, on member B.
	old := c.cfg.ClientSessionCache
	c2 := newClient(ca, tls.VersionTLS13)
	c2.cfg.ClientSessionCache = old
	if !c2.connect(t, ms[1].addr) {
		t.Fatal("a ticket one period old did not resume on another member")
	}

	// A ticket older than TicketLifetime (plus the period it was issued in)
	// no longer resumes.
	c3 := newClient(ca, tls.VersionTLS13)
	c3.connect(t, ms[2].addr)
	expired := newClient(ca, tls.VersionTLS13)
	expired.cfg.ClientSessionCache = c3.cfg.ClientSessionCache
	time.Sleep(life + 2*period + 200*time.Millisecond)
	if expired.connect(t, ms[0].addr) {
		t.Fatal("a ticket older than TicketLifetime resumed")
	}
}
