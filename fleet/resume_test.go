package fleet_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// A client that resumed on one member resumes on every other, with fleet
// tickets and with the session store, in TLS 1.2 and 1.3.
func TestCrossMemberResumption(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	for _, mode := range []string{"tickets", "sessions"} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(mode+"/"+tls.VersionName(v), func(t *testing.T) {
				var ms []*member
				for range 3 {
					ms = append(ms, startMember(t, rdb, memberOptions{
						sessions: mode == "sessions", cert: cert,
					}))
				}
				c := newClient(ca, v)
				if c.connect(t, ms[0].addr) {
					t.Fatal("first handshake resumed")
				}
				for i, m := range []*member{ms[1], ms[2], ms[0], ms[2]} {
					if !c.connect(t, m.addr) {
						t.Errorf("handshake %d (member %s) did not resume", i+2, m.addr)
					}
				}
			})
		}
	}
}

// Nothing secret reaches Redis in the clear: not a TLS 1.2 master secret,
// not a TLS 1.3 traffic secret, not a ticket key.
func TestNothingSecretInRedis(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	cert := ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
	var ms []*member
	for _, sessions := range []bool{true, false} {
		ms = append(ms, startMember(t, rdb, memberOptions{sessions: sessions, cert: cert}))
	}
	var secrets [][]byte
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, m := range ms {
			c := newClient(ca, v)
			c.connect(t, m.addr)
			c.connect(t, m.addr)
			for _, line := range strings.Split(c.keylog.String(), "\n") {
				f := strings.Fields(line)
				if len(f) == 3 {
					b, err := hex.DecodeString(f[2])
					if err != nil {
						t.Fatal(err)
					}
					secrets = append(secrets, b)
				}
			}
		}
	}
	for _, m := range ms {
		secrets = append(secrets, m.srv.TicketKeys())
	}
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets collected from the key log", len(secrets))
	}
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 3 {
		t.Fatalf("Redis holds %d keys; expected sessions and ticket keys", len(keys))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "tlsemit:") {
			t.Errorf("key %q outside the prefix", k)
		}
		v, err := rdb.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(v), string(s)) || strings.Contains(string(v), hex.EncodeToString(s)) {
				t.Fatalf("Redis value of %s contains a secret", k)
			}
		}
	}
}
