package fleet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Fleets that differ in Prefix or Secret share a Redis without resuming
// each other's sessions and without failing because of each other's data.
func TestFleetsIsolated(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	other := bytes.Repeat([]byte{0x77}, 32)
	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			start := func(prefix string, secret []byte) *member {
				return startMember(t, rdb, memberOptions{
					sessions: mode == "sessions", cert: cert,
					fleet: fleet.Options{Prefix: prefix, Secret: secret},
				})
			}
			a1, a2 := start("a:", secret), start("a:", secret)
			b := start("b:", secret)
			c := start("a:", other) // same prefix, another secret
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cl := newClient(ca, v)
				cl.connect(t, a1.addr)
				if !cl.connect(t, a2.addr) {
					t.Fatalf("%s: no resumption within fleet a", tls.VersionName(v))
				}
				for name, m := range map[string]*member{"other prefix": b, "other secret": c} {
					cl := newClient(ca, v)
					cl.connect(t, a1.addr)
					if cl.connect(t, m.addr) {
						t.Errorf("%s: a session of fleet a resumed on a fleet with %s", tls.VersionName(v), name)
					}
				}
			}
		})
	}
}

// Garbage or truncated values under the prefix, even under the very keys
// the fleet reads, are ignored: handshakes go on, full where they must.
func TestGarbageValues(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	ctx := context.Background()
	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			m1 := startMember(t, rdb, memberOptions{sessions: mode == "sessions", cert: cert})
			m2 := startMember(t, rdb, memberOptions{sessions: mode == "sessions", cert: cert})
			cl := newClient(ca, tls.VersionTLS13)
			cl.connect(t, m1.addr)
			keys, err := rdb.Keys(ctx, "tlsemit:*").Result()
			if err != nil || len(keys) == 0 {
				t.Fatalf("no keys to spoil: %v", err)
			}
			for i, k := range keys {
				v, _ := rdb.Get(ctx, k).Bytes()
				junk := [][]byte{nil, []byte("garbage"), v[:len(v)/2], append([]byte{0x01}, make([]byte, 100)...)}[i%4]
				if err := rdb.Set(ctx, k, junk, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			// Every handshake completes; the spoiled session cannot resume.
			for range 3 {
				cl.connect(t, m2.addr)
			}
			if mode == "sessions" {
				fresh := newClient(ca, tls.VersionTLS13)
				fresh.connect(t, m1.addr)
				if !fresh.connect(t, m2.addr) {
					t.Error("the session store stopped working after garbage")
				}
			}
		})
	}
}
