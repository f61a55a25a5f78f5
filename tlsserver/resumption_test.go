package tlsserver_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// rsaLeaf issues an RSA server certificate for localhost from ca.
func rsaLeaf(t testing.TB, ca *testpki.CA) tls.Certificate {
	t.Helper()
	return ca.IssueRSA(t, testpki.LeafOptions{})
}

// Item 3, as the issue tells it: RSA certificate, a TLS 1.2 client takes a
// ticket, SetSecureContext switches to ECDSA. crypto/tls refuses the ticket
// (its suite no longer fits the key): the handshake is full, so
// 'OCSPRequest' fires and the ECDSA certificate is stapled.
func TestTLS12RefusedTicketAfterKeyTypeChangeEmits(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.Certificates = []tls.Certificate{rsaLeaf(t, p.ca)} })
	var calls atomic.Int32
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { calls.Add(1); cb(nil, []byte("staple")) })
	cfg := tsClientConfig(p, tls.VersionTLS12)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	tsMustDial(t, srv, cfg).Close()
	if err := srv.SetSecureContext(tlsserver.SecureContext{Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)}}); err != nil {
		t.Fatal(err)
	}
	c := tsMustDial(t, srv, cfg)
	st := c.ConnectionState()
	if st.DidResume {
		t.Fatal("resumed an RSA session on an ECDSA certificate")
	}
	if calls.Load() != 2 || string(st.OCSPResponse) != "staple" {
		t.Fatalf("full handshake with 'OCSPRequest' emitted %d times in all, staple %q", calls.Load(), st.OCSPResponse)
	}
}

// resumeEnv is a TLS 1.2 server with an 'OCSPRequest' listener, a clock
// the test moves, and (when probed) ticket hooks of its own in the Config,
// which tell whether a client offered a ticket.
type resumeEnv struct {
	t       *testing.T
	p       *tsPKI
	srv     *tlsserver.Server
	ctx     tlsserver.SecureContext // the current default context
	skew    atomic.Int64            // added to the server's clock
	events  atomic.Int32            // 'OCSPRequest' emissions
	offered atomic.Int32            // tickets offered (probed only)
}

func newResumeEnv(t *testing.T, p *tsPKI, probed bool, mod func(*tlsserver.Options)) *resumeEnv {
	e := &resumeEnv{t: t, p: p}
	e.srv = tsServer(t, p, func(o *tlsserver.Options) {
		o.SessionTimeout = 24 * time.Hour
		o.Config = &tls.Config{MaxVersion: tls.VersionTLS12, Time: func() time.Time {
			return time.Now().Add(time.Duration(e.skew.Load()))
		}}
		if probed {
			keys := &tls.Config{} // the probe's own ticket keys
			o.Config.WrapSession = keys.EncryptTicket
			o.Config.UnwrapSession = func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
				if len(id) > 0 {
					e.offered.Add(1)
				}
				return keys.DecryptTicket(id, cs)
			}
		}
		if mod != nil {
			mod(o)
		}
		e.ctx = tlsserver.SecureContext{Certificates: o.Certificates, CA: o.CA, Config: o.Config}
	})
	e.srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { e.events.Add(1); cb(nil, []byte("staple")) })
	e.srv.OnSecureConnection(func(c *tls.Conn) {
		go func() {
			io.Copy(io.Discard, c)
			c.Close()
		}()
	})
	return e
}

// change replaces the default context with mod applied to a copy of it.
func (e *resumeEnv) change(mod func(*tlsserver.SecureContext)) {
	e.t.Helper()
	ctx := e.ctx
	ctx.Config = ctx.Config.Clone()
	mod(&ctx)
	if err := e.srv.SetSecureContext(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.ctx = ctx
}

// clientCert issues a client certificate from ca, valid until notAfter.
func clientCert(t testing.TB, ca *testpki.CA, notAfter time.Time) tls.Certificate {
	l := ca.Issue(t, testpki.LeafOptions{CommonName: "client", DNSNames: []string{"client.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotAfter: notAfter})
	return l.TLSCertificate(true)
}

// Item 3: the table. Each row drives real crypto/tls through one rule by
// which it refuses a TLS 1.2 session (and, as controls, through changes it
// accepts). For every second handshake 'OCSPRequest' must fire exactly
// when the handshake is full (ConnectionState().DidResume false), and the
// row's expectation says which it is, so the rule was really exercised.
// Probed, the server's Config has its own ticket hooks that count the
// tickets offered, showing that the client did offer its ticket.
func TestTLS12ResumptionRulesTable(t *testing.T) {
	p := newTSPKI(t)
	otherCA := testpki.NewCA(t, "other client CA")
	rsaCert := rsaLeaf(t, p.ca)
	ecdsaCert := p.leaf.TLSCertificate(true)
	const (
		aes128 = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
		aes256 = tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	)
	type row struct {
		name    string
		server  func(*tlsserver.Options)
		client  func(*tls.Config, int) // the i-th handshake's client (0, 1)
		between func(*resumeEnv)
		resume  bool
	}
	rows := []row{
		{name: "unchanged: resumes", resume: true},
		{name: "version: the server now stops at TLS 1.1",
			server: func(o *tlsserver.Options) { o.Config.MinVersion = tls.VersionTLS10 },
			client: func(c *tls.Config, _ int) { c.MinVersion = tls.VersionTLS10 },
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.MaxVersion = tls.VersionTLS11 })
			}},
		{name: "cipher suite: the server no longer allows it",
			server: func(o *tlsserver.Options) { o.Config.CipherSuites = []uint16{aes128} },
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.CipherSuites = []uint16{aes256} })
			}},
		{name: "cipher suite: the server allows it among others",
			server: func(o *tlsserver.Options) { o.Config.CipherSuites = []uint16{aes128} },
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.CipherSuites = []uint16{aes256, aes128} })
			}, resume: true},
		{name: "certificate key type: RSA to ECDSA",
			server: func(o *tlsserver.Options) { o.Certificates = []tls.Certificate{rsaCert} },
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Certificates = []tls.Certificate{ecdsaCert} })
			}},
		{name: "certificate key type: ECDSA to RSA",
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Certificates = []tls.Certificate{rsaCert} })
			}},
		{name: "certificate: another of the same key type",
			between: func(e *resumeEnv) {
				next := e.p.ca.Issue(e.t, testpki.LeafOptions{}).TLSCertificate(true)
				e.change(func(sc *tlsserver.SecureContext) { sc.Certificates = []tls.Certificate{next} })
			}, resume: true},
		{name: "curves: no shared curve for the session's ECDHE suite",
			server: func(o *tlsserver.Options) {
				o.Certificates = []tls.Certificate{rsaCert}
				o.Config.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
				o.Config.CurvePreferences = []tls.CurveID{tls.X25519}
			},
			client: func(c *tls.Config, i int) {
				c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
				c.CurvePreferences = []tls.CurveID{tls.X25519}
				if i == 1 {
					c.CurvePreferences = []tls.CurveID{tls.CurveP256}
				}
			}},
		{name: "age: older than SessionTimeout",
			server:  func(o *tlsserver.Options) { o.SessionTimeout = time.Hour },
			between: func(e *resumeEnv) { e.skew.Store(int64(time.Hour + time.Minute)) }},
		{name: "age: younger than SessionTimeout",
			server:  func(o *tlsserver.Options) { o.SessionTimeout = time.Hour },
			between: func(e *resumeEnv) { e.skew.Store(int64(time.Hour - time.Minute)) }, resume: true},
		{name: "age: older than crypto/tls's 7 days",
			server:  func(o *tlsserver.Options) { o.SessionTimeout = -1 },
			between: func(e *resumeEnv) { e.skew.Store(int64(7*24*time.Hour + time.Minute)) }},
		{name: "client certificate: expired since",
			server: func(o *tlsserver.Options) { o.Config.ClientAuth = tls.RequestClientCert },
			client: func(c *tls.Config, _ int) {
				c.Certificates = []tls.Certificate{clientCert(t, p.ca, time.Now().Add(time.Hour))}
			},
			between: func(e *resumeEnv) { e.skew.Store(int64(2 * time.Hour)) }},
		{name: "client certificate: no longer verifies (ClientCAs changed)",
			server: func(o *tlsserver.Options) {
				o.Config.ClientAuth = tls.VerifyClientCertIfGiven
				o.Config.ClientCAs = p.ca.Pool()
			},
			client: func(c *tls.Config, i int) {
				ca := p.ca
				if i == 1 {
					ca = otherCA // the full handshake needs a certificate the new roots accept
				}
				c.Certificates = []tls.Certificate{clientCert(t, ca, time.Now().Add(time.Hour))}
			},
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.ClientCAs = otherCA.Pool() })
			}},
		{name: "client certificate: ClientCAs rebuilt, still trusting its root",
			server: func(o *tlsserver.Options) {
				o.Config.ClientAuth = tls.RequireAndVerifyClientCert
				o.Config.ClientCAs = p.ca.Pool()
			},
			client: func(c *tls.Config, _ int) {
				c.Certificates = []tls.Certificate{clientCert(t, p.ca, time.Now().Add(time.Hour))}
			},
			between: func(e *resumeEnv) {
				pool := p.ca.Pool()
				pool.AddCert(otherCA.Cert)
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.ClientCAs = pool })
			}, resume: true},
		{name: "client certificate: now required, the session has none",
			client: func(c *tls.Config, _ int) {
				c.Certificates = []tls.Certificate{clientCert(t, p.ca, time.Now().Add(time.Hour))}
			},
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.ClientAuth = tls.RequireAnyClientCert })
			}},
		{name: "client certificate: the session has one, the server no longer asks",
			server: func(o *tlsserver.Options) { o.Config.ClientAuth = tls.RequestClientCert },
			client: func(c *tls.Config, _ int) {
				c.Certificates = []tls.Certificate{clientCert(t, p.ca, time.Now().Add(time.Hour))}
			},
			between: func(e *resumeEnv) {
				e.change(func(sc *tlsserver.SecureContext) { sc.Config.ClientAuth = tls.NoClientCert })
			}},
	}
	for _, probed := range []bool{true, false} {
		for _, r := range rows {
			t.Run(map[bool]string{true: "probed", false: "default"}[probed]+"/"+r.name, func(t *testing.T) {
				e := newResumeEnv(t, p, probed, r.server)
				cache := tls.NewLRUClientSessionCache(4)
				var resumed [2]bool
				for i := range 2 {
					if i == 1 && r.between != nil {
						r.between(e)
					}
					cfg := tsClientConfig(p, 0)
					cfg.MaxVersion = tls.VersionTLS12
					cfg.ClientSessionCache = cache
					if r.client != nil {
						r.client(cfg, i)
					}
					before := e.events.Load()
					c, err := tsDial(e.srv, cfg)
					if err != nil {
						t.Fatalf("handshake %d: %v", i, err)
					}
					st := c.ConnectionState()
					c.Close()
					resumed[i] = st.DidResume
					fired := e.events.Load() > before
					if fired == st.DidResume {
						t.Fatalf("handshake %d: resumed %v, 'OCSPRequest' fired %v", i, st.DidResume, fired)
					}
					if fired && len(st.OCSPResponse) == 0 {
						t.Fatalf("handshake %d: full, but nothing stapled", i)
					}
				}
				if resumed[0] || resumed[1] != r.resume {
					t.Fatalf("resumed %v, want [false %v]", resumed, r.resume)
				}
				if probed && e.offered.Load() == 0 {
					t.Fatal("the client offered no ticket: the row tests nothing")
				}
			})
		}
	}
}

// Item 3, the rules only Node's client (OpenSSL) can drive: a client that
// no longer offers the session's cipher suite, and the extended master
// secret dropped or added (crypto/tls's own client always offers it and
// never sends a ticket for a suite it does not offer).
func TestTLS12ResumptionRulesNodeClient(t *testing.T) {
	node := testenv.RequireTool(t, "node")
	p := newTSPKI(t)
	caPath, _ := p.ca.WritePEM(t.TempDir())
	const noEMS = 1 // OpenSSL 3.0's SSL_OP_NO_EXTENDED_MASTER_SECRET
	for _, tc := range []struct {
		name   string
		each   []map[string]any
		resume bool
	}{
		{"unchanged: resumes", nil, true},
		{"cipher suite: the client no longer offers it",
			[]map[string]any{{"ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"}, {"ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384"}}, false},
		{"extended master secret: the session has none, the client now offers it",
			[]map[string]any{{"secureOptions": noEMS}, {}}, false},
		{"extended master secret: the session has it, the client no longer offers it",
			[]map[string]any{{}, {"secureOptions": noEMS}}, false},
		{"extended master secret: neither has it",
			[]map[string]any{{"secureOptions": noEMS}, {"secureOptions": noEMS}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newResumeEnv(t, p, true, nil)
			var mu sync.Mutex
			var events []int32 // 'OCSPRequest' emissions so far, at each 'secureConnection'
			e.srv.OnSecureConnection(func(*tls.Conn) {
				mu.Lock()
				events = append(events, e.events.Load())
				mu.Unlock()
			})
			res := runNodeClient(t, node, clientOpts{Port: port(e.srv), CA: []string{caPath}, RequestOCSP: true,
				MaxVersion: "TLSv1.2", Connections: 2, Resume: true, Each: tc.each})
			mu.Lock()
			defer mu.Unlock()
			if len(res) != 2 || !res[0].OK || !res[1].OK || len(events) != 2 {
				t.Fatalf("node client: %+v, server saw %d connections", res, len(events))
			}
			fired := events[1] > events[0]
			if res[1].Reused == fired {
				t.Fatalf("reused %v, 'OCSPRequest' fired %v", res[1].Reused, fired)
			}
			if res[1].Reused != tc.resume {
				t.Fatalf("reused %v, want %v", res[1].Reused, tc.resume)
			}
			if e.offered.Load() == 0 {
				t.Fatal("the client offered no ticket: the row tests nothing")
			}
		})
	}
}

// SessionTimeout holds for the session store too: 'resumeSession' data
// older than it is a full handshake (with 'OCSPRequest'), never an error;
// the default is Node's 300 s.
func TestSessionTimeoutWithSessionStore(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			var skew atomic.Int64
			srv := tsServer(t, p, func(o *tlsserver.Options) {
				o.Config = &tls.Config{Time: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
			})
			var store sync.Map
			srv.OnNewSession(func(id, data []byte, done func()) { store.Store(string(id), data); done() })
			srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
				data, _ := store.Load(string(id))
				b, _ := data.([]byte)
				cb(nil, b)
			})
			var events atomic.Int32
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { events.Add(1); cb(nil, nil) })
			ce := tsClientErrors(srv)
			cfg := tsClientConfig(p, v.v)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			dial := func() bool {
				c := tsMustDial(t, srv, cfg)
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				c.Read(make([]byte, 1)) // TLS 1.3 tickets come after the handshake
				c.Close()
				return c.ConnectionState().DidResume
			}
			dial()
			skew.Store(int64(tlsserver.DefaultSessionTimeout - 30*time.Second))
			if !dial() {
				t.Fatal("a session younger than the default SessionTimeout did not resume")
			}
			skew.Store(int64(tlsserver.DefaultSessionTimeout + 30*time.Second))
			if v.v == tls.VersionTLS13 {
				// TLS 1.3: the resumption issued a session of its own.
				skew.Store(int64(2*tlsserver.DefaultSessionTimeout + 30*time.Second))
			}
			before := events.Load()
			if dial() {
				t.Fatal("a session older than SessionTimeout resumed")
			}
			if events.Load() != before+1 {
				t.Fatal("no 'OCSPRequest' for the full handshake")
			}
			ce.none(t)
		})
	}
}

// In TLS 1.2 a resumed session keeps its creation time (as crypto/tls's
// own): resuming again and again does not stretch it past SessionTimeout.
func TestSessionTimeoutNotExtendedByTLS12Resumption(t *testing.T) {
	p := newTSPKI(t)
	var skew atomic.Int64
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.SessionTimeout = time.Hour
		o.Config = &tls.Config{Time: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
	})
	cfg := tsClientConfig(p, tls.VersionTLS12)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	tsMustDial(t, srv, cfg).Close()
	for _, at := range []time.Duration{20 * time.Minute, 40 * time.Minute, 55 * time.Minute} {
		skew.Store(int64(at))
		if !tsMustDial(t, srv, cfg).ConnectionState().DidResume {
			t.Fatalf("not resumed at +%v", at)
		}
	}
	skew.Store(int64(65 * time.Minute))
	if tsMustDial(t, srv, cfg).ConnectionState().DidResume {
		t.Fatal("resumption stretched the session past SessionTimeout")
	}
}

// Issue 12's ticket-key ring: the first key encrypts, all decrypt; Node's
// one-key call still works; TicketKeys returns the encrypting key. A
// ticket under k1 resumes after SetTicketKeys(k2, k1), not after
// SetTicketKeys(k2); the ring survives SetSecureContext and keeps to
// SessionTimeout.
func TestTicketKeyRing(t *testing.T) {
	p := newTSPKI(t)
	k1, k2 := bytes.Repeat([]byte{1}, 48), bytes.Repeat([]byte{2}, 48)
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			var skew atomic.Int64
			clock := &tls.Config{Time: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
			srv := tsServer(t, p, func(o *tlsserver.Options) { o.Config = clock })
			var events atomic.Int32
			srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { events.Add(1); cb(nil, nil) })
			if err := srv.SetTicketKeys(k1); err != nil {
				t.Fatal(err)
			}
			// Two clients with a ticket under k1 each.
			caches := []tls.ClientSessionCache{tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4)}
			dial := func(cache tls.ClientSessionCache) bool {
				cfg := tsClientConfig(p, v.v)
				cfg.ClientSessionCache = cache
				c := tsMustDial(t, srv, cfg)
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				c.Read(make([]byte, 1))
				c.Close()
				return c.ConnectionState().DidResume
			}
			for _, cache := range caches {
				dial(cache)
			}
			next := p.ca.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)
			if err := srv.SetSecureContext(tlsserver.SecureContext{Certificates: []tls.Certificate{next}, Config: clock}); err != nil {
				t.Fatal(err)
			}
			if err := srv.SetTicketKeys(k2, k1); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(srv.TicketKeys(), k2) {
				t.Fatal("TicketKeys is not the encrypting key")
			}
			before := events.Load()
			if !dial(caches[0]) || events.Load() != before {
				t.Fatal("a ticket under k1 did not resume after SetTicketKeys(k2, k1)")
			}
			if err := srv.SetTicketKeys(k2); err != nil {
				t.Fatal(err)
			}
			if dial(caches[1]) || events.Load() != before+1 {
				t.Fatal("a ticket under k1 resumed after SetTicketKeys(k2)")
			}
			// The ring does not stretch SessionTimeout.
			skew.Store(int64(tlsserver.DefaultSessionTimeout + time.Minute))
			if dial(caches[0]) {
				t.Fatal("a session older than SessionTimeout resumed")
			}
		})
	}
	srv := tsServer(t, p, nil)
	for _, bad := range [][][]byte{nil, {make([]byte, 32)}, {k1, make([]byte, 47)}} {
		if err := srv.SetTicketKeys(bad...); err == nil {
			t.Errorf("SetTicketKeys(%d keys) accepted", len(bad))
		}
	}
}

// Rotation every few minutes from another goroutine while handshakes run
// (as issue 12's fleet will): no race (-race), no failed handshake.
func TestTicketKeyRotationUnderLoad(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	stop := make(chan struct{})
	rotated := make(chan int)
	go func() {
		n := 0
		prev := srv.TicketKeys()
		for {
			select {
			case <-stop:
				rotated <- n
				return
			default:
			}
			k := make([]byte, 48)
			rand.Read(k)
			if err := srv.SetTicketKeys(k, prev); err != nil {
				panic(err)
			}
			prev = k
			n++
		}
	}()
	cfg := tsClientConfig(p, 0)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 30 {
		c, err := tsDial(srv, cfg)
		if err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		c.Close()
	}
	close(stop)
	t.Logf("%d rotations", <-rotated)
}

// Issue 16: SessionTimeout at full precision. A session resumes exactly
// while its age, by the server's clock (Config.Time, injected here), is
// under SessionTimeout: to the nanosecond, so a sub-second timeout works
// and a session created late in a second is kept for the whole timeout
// (OpenSSL, and so Node, keeps a session at least that long). Real
// crypto/tls clients, TLS 1.2 and 1.3, with tickets and with the session
// store.
func TestSessionTimeoutFullPrecision(t *testing.T) {
	p := newTSPKI(t)
	// The session is created 0.9 s into a second, where whole seconds
	// would age it by up to 1 s too much.
	base := time.Now().Truncate(time.Second).Add(900 * time.Millisecond)
	cases := []struct {
		timeout, age time.Duration
		resume       bool
	}{
		{tlsserver.DefaultSessionTimeout, tlsserver.DefaultSessionTimeout - time.Nanosecond, true},
		{tlsserver.DefaultSessionTimeout, tlsserver.DefaultSessionTimeout - 500*time.Millisecond, true},
		{tlsserver.DefaultSessionTimeout, tlsserver.DefaultSessionTimeout, false},
		{500 * time.Millisecond, 0, true},
		{500 * time.Millisecond, 499 * time.Millisecond, true},
		{500 * time.Millisecond, 500 * time.Millisecond, false},
		{time.Millisecond, time.Millisecond - time.Nanosecond, true},
		{time.Millisecond, time.Millisecond, false},
	}
	for _, v := range versions {
		for _, store := range []bool{false, true} {
			for _, tc := range cases {
				name := fmt.Sprintf("%s/store=%v/timeout=%v/age=%v", v.name, store, tc.timeout, tc.age)
				t.Run(name, func(t *testing.T) {
					var age atomic.Int64
					srv := tsServer(t, p, func(o *tlsserver.Options) {
						o.SessionTimeout = tc.timeout
						o.Config = &tls.Config{Time: func() time.Time { return base.Add(time.Duration(age.Load())) }}
					})
					if store {
						var sessions sync.Map
						srv.OnNewSession(func(id, data []byte, done func()) { sessions.Store(string(id), data); done() })
						srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
							data, _ := sessions.Load(string(id))
							b, _ := data.([]byte)
							cb(nil, b)
						})
					}
					// The server writes a byte once established: the client
					// has its TLS 1.3 ticket when it has read it.
					srv.OnSecureConnection(func(c *tls.Conn) {
						c.Write([]byte{1})
						c.Close()
					})
					ce := tsClientErrors(srv)
					cfg := tsClientConfig(p, v.v)
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
					dial := func() bool {
						c := tsMustDial(t, srv, cfg)
						if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
							t.Fatalf("read: %v", err)
						}
						c.Close()
						return c.ConnectionState().DidResume
					}
					if dial() {
						t.Fatal("the first handshake resumed")
					}
					age.Store(int64(tc.age))
					if got := dial(); got != tc.resume {
						t.Fatalf("a session %v old with SessionTimeout %v: resumed %v, want %v", tc.age, tc.timeout, got, tc.resume)
					}
					ce.none(t)
				})
			}
		}
	}
}
