package fleet

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func TestSessionsEdgeCases(t *testing.T) {
	m := miniredis.RunT(t)
	f, logs := miniFleet(t, m, Options{SessionTTL: 300 * time.Second})
	id := bytes.Repeat([]byte{0xab}, 32)
	data := []byte("session state with a master secret")

	f.saveSession(id, data)
	key := f.sessionKey(id)
	if key != "tlsemit:session:"+strings.Repeat("ab", 32) {
		t.Fatalf("session key %q", key)
	}
	if ttl := m.TTL(key); ttl != 300*time.Second {
		t.Errorf("TTL = %v, want SessionTTL", ttl)
	}
	if v, _ := m.Get(key); strings.Contains(v, string(data)) {
		t.Fatal("session state stored in the clear")
	}
	if got := f.loadSession(id); !bytes.Equal(got, data) {
		t.Fatalf("loadSession = %q", got)
	}

	// A sealed value copied under another id does not open there.
	other := bytes.Repeat([]byte{0xcd}, 32)
	v, _ := m.Get(key)
	m.Set(f.sessionKey(other), v)
	if got := f.loadSession(other); got != nil {
		t.Error("a session copied to another key resumed")
	}
	// Garbage, truncation and oversize are full handshakes.
	for name, val := range map[string]string{
		"garbage":   "not a sealed value",
		"truncated": v[:len(v)-3],
		"empty":     "",
		"oversize":  strings.Repeat("x", maxSessionValue+10),
	} {
		m.Set(key, val)
		if got := f.loadSession(id); got != nil {
			t.Errorf("%s: loadSession = %q, want nil", name, got)
		}
	}
	if !strings.Contains(logs.String(), "ignoring unreadable value") {
		t.Errorf("unreadable value not logged:\n%s", logs)
	}
	// Another fleet's Secret cannot read ours.
	f.saveSession(id, data)
	f2, _ := miniFleet(t, m, Options{Secret: bytes.Repeat([]byte("z"), 32)})
	if got := f2.loadSession(id); got != nil {
		t.Error("a fleet with another Secret resumed our session")
	}
	// Expired: gone.
	m.FastForward(301 * time.Second)
	if got := f.loadSession(id); got != nil {
		t.Error("an expired session resumed")
	}
	// Redis down: a full handshake, and one log line for the outage.
	m.Close()
	for range 3 {
		f.saveSession(id, data)
		if got := f.loadSession(id); got != nil {
			t.Error("resumed with Redis down")
		}
	}
	if n := strings.Count(logs.String(), "Redis unavailable"); n != 1 {
		t.Errorf("outage logged %d times, want 1:\n%s", n, logs)
	}
}
