package fleet

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Unit tests of edge cases against miniredis, with the fleet's clock
// driven by hand. The integration tests use a real redis-server.

var testSecret = bytes.Repeat([]byte("s"), 32)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func miniFleet(t *testing.T, m *miniredis.Miniredis, opts Options) (*Fleet, *logBuffer) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	opts.Redis = c
	if opts.Secret == nil {
		opts.Secret = testSecret
	}
	logs := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, logs
}

func TestNewRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no redis", Options{Secret: testSecret}, "Redis is required"},
		{"short secret", Options{Redis: c, Secret: make([]byte, 31)}, "at least 32 bytes"},
		{"brace in prefix", Options{Redis: c, Secret: testSecret, Prefix: "a{b}:"}, "contains '{'"},
		{"negative ttl", Options{Redis: c, Secret: testSecret, SessionTTL: -1}, "SessionTTL is negative"},
		{"tiny period", Options{Redis: c, Secret: testSecret, TicketKeyPeriod: time.Millisecond}, "at least a second"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	f, err := New(Options{Redis: c, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if f.prefix != DefaultPrefix || f.ttl != DefaultSessionTTL || f.period != DefaultTicketKeyPeriod || f.life != DefaultTicketLifetime {
		t.Errorf("defaults: prefix %q ttl %v period %v life %v", f.prefix, f.ttl, f.period, f.life)
	}
	f.Close()
	if _, err := f.TicketKeys(context.Background(), nil); err == nil {
		t.Error("TicketKeys(nil server) succeeded")
	}
}

func TestSealBindsKeyNameAndSecret(t *testing.T) {
	a, _ := newSealer(testSecret, "session")
	b, _ := newSealer(bytes.Repeat([]byte("t"), 32), "session")
	otherPurpose, _ := newSealer(testSecret, "ticket-key")
	msg := []byte("master secret")
	v := a.seal("k1", msg)
	if bytes.Contains(v, msg) {
		t.Fatal("sealed value contains the plaintext")
	}
	if got, err := a.open("k1", v); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open = %q, %v", got, err)
	}
	if v2 := a.seal("k1", msg); bytes.Equal(v, v2) {
		t.Error("two seals of one value are equal: nonce reused")
	}
	for name, open := range map[string]func() ([]byte, error){
		"other key name":  func() ([]byte, error) { return a.open("k2", v) },
		"other secret":    func() ([]byte, error) { return b.open("k1", v) },
		"other purpose":   func() ([]byte, error) { return otherPurpose.open("k1", v) },
		"truncated":       func() ([]byte, error) { return a.open("k1", v[:len(v)-1]) },
		"empty":           func() ([]byte, error) { return a.open("k1", nil) },
		"flipped bit":     func() ([]byte, error) { w := bytes.Clone(v); w[len(w)/2] ^= 1; return a.open("k1", w) },
		"unknown version": func() ([]byte, error) { w := bytes.Clone(v); w[0] = 2; return a.open("k1", w) },
	} {
		if _, err := open(); !errors.Is(err, errSealed) {
			t.Errorf("%s: open error = %v, want errSealed", name, err)
		}
	}
	if a.keyID() == b.keyID() {
		t.Error("two secrets share a key id")
	}
}
