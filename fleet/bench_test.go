//go:build linux

package fleet_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/cputime"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// BenchmarkResumedHandshake alternates, handshake by handshake, TLS 1.3
// resumptions on plain crypto/tls (its own ticket key) and on a tlsserver
// whose keys come from fleet.TicketKeys, over loopback TCP. It reports the server goroutine's
// CPU time per resumed handshake for both and their ratio (target ≤ 1.05).
func BenchmarkResumedHandshake(b *testing.B) {
	_, rdb := startRedis(b)
	ca := testpki.NewCA(b, "bench CA")
	cert := ca.Issue(b, testpki.LeafOptions{}).TLSCertificate(true)

	plainCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	plainCfg.SetSessionTicketKeys([][32]byte{{1}})

	fl, err := fleet.New(fleet.Options{Redis: rdb, Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Close()
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	stop, err := fl.TicketKeys(context.Background(), srv)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	res := make(chan time.Duration, 1)
	var t0 time.Duration
	srv.OnConnection(func(net.Conn) {
		runtime.LockOSThread()
		t0 = cputime.Thread()
	})
	srv.OnSecureConnection(func(c *tls.Conn) {
		d := cputime.Thread() - t0
		runtime.UnlockOSThread()
		if !c.ConnectionState().DidResume {
			d = -1
		}
		res <- d
		c.Close()
	})
	srv.OnTLSClientError(func(error, net.Conn) {
		runtime.UnlockOSThread()
		res <- -1
	})

	newClient := func() *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	}
	plainClient, fleetClient := newClient(), newClient()
	plain := func() time.Duration {
		cs, ss := tcpPair(b)
		done := make(chan time.Duration, 1)
		go func() {
			runtime.LockOSThread()
			s := tls.Server(ss, plainCfg)
			t := cputime.Thread()
			err := s.Handshake()
			d := cputime.Thread() - t
			runtime.UnlockOSThread()
			if err != nil || !s.ConnectionState().DidResume {
				d = -1
			}
			s.Write([]byte{0}) // the ticket went out with the handshake; this lets the client read it
			s.Close()
			done <- d
		}()
		return clientSide(b, cs, plainClient, done)
	}
	viaFleet := func() time.Duration {
		cs, ss := tcpPair(b)
		srv.ServeConn(ss)
		return clientSide(b, cs, fleetClient, res)
	}
	// Prime both session caches with a full handshake each.
	primeClient(b, plainCfg, plainClient)
	primeFleet(b, srv, fleetClient, res)

	var p, f time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			p += plain()
			f += viaFleet()
		} else {
			f += viaFleet()
			p += plain()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(p.Nanoseconds())/n, "crypto/tls-server-ns/resumption")
	b.ReportMetric(float64(f.Nanoseconds())/n, "fleet-server-ns/resumption")
	b.ReportMetric(float64(f)/float64(p), "ratio")
}

// clientSide runs the client's half of a resumption over cs and returns
// the server's measurement.
func clientSide(b *testing.B, cs net.Conn, cfg *tls.Config, res <-chan time.Duration) time.Duration {
	c := tls.Client(cs, cfg)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	c.Read(make([]byte, 1)) // takes in the new ticket
	c.Close()
	d := <-res
	if d < 0 {
		b.Fatal("server handshake failed or was not a resumption")
	}
	return d
}

func primeClient(b *testing.B, serverCfg, clientCfg *tls.Config) {
	cs, ss := tcpPair(b)
	go func() {
		s := tls.Server(ss, serverCfg)
		s.Handshake()
		s.Write([]byte{0})
		s.Close()
	}()
	c := tls.Client(cs, clientCfg)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	c.Read(make([]byte, 1))
	c.Close()
}

func primeFleet(b *testing.B, srv *tlsserver.Server, clientCfg *tls.Config, res <-chan time.Duration) {
	cs, ss := tcpPair(b)
	srv.ServeConn(ss)
	c := tls.Client(cs, clientCfg)
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	c.Read(make([]byte, 1)) // takes in the ticket
	c.Close()
	<-res // a full handshake: -1
}

// BenchmarkSessionStoreLatency measures what the session store adds to a
// handshake as its client sees it, on loopback TCP against a real
// redis-server: sequential resumptions (one read, one write) alternating
// between a member with Sessions and one with fleet tickets (no Redis on
// the handshake path). It reports p50 and p99 of both and the differences,
// and the p50 of two plain round trips to the same redis-server (a SET and
// a GETRANGE), the floor of what the store's two waited calls add.
func BenchmarkSessionStoreLatency(b *testing.B) {
	_, rdb := startRedis(b)
	ca := testpki.NewCA(b, "bench CA")
	cert := ca.Issue(b, testpki.LeafOptions{}).TLSCertificate(true)
	store := startMember(b, rdb, memberOptions{sessions: true, cert: cert})
	tickets := startMember(b, rdb, memberOptions{cert: cert})
	cs, ct := newClient(ca, tls.VersionTLS13), newClient(ca, tls.VersionTLS13)
	cs.connect(b, store.addr)
	ct.connect(b, tickets.addr)
	var ds, dt, dr []time.Duration
	timed := func(c *client, addr string) time.Duration {
		t0 := time.Now()
		if !c.connect(b, addr) {
			b.Fatal("not resumed")
		}
		return time.Since(t0)
	}
	// The floor: the two round trips a resumption through the store waits
	// for (the lookup, the new session's write), made plainly with the
	// same client.
	ctx, value := context.Background(), make([]byte, 300)
	roundTrips := func() time.Duration {
		t0 := time.Now()
		if err := rdb.Set(ctx, "bench:floor", value, time.Minute).Err(); err != nil {
			b.Fatal(err)
		}
		if err := rdb.GetRange(ctx, "bench:floor", 0, 1<<18).Err(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for b.Loop() {
		ds = append(ds, timed(cs, store.addr))
		dt = append(dt, timed(ct, tickets.addr))
		dr = append(dr, roundTrips())
	}
	ps50, ps99 := percentiles(ds)
	pt50, pt99 := percentiles(dt)
	pr50, _ := percentiles(dr)
	b.ReportMetric(float64(pr50.Microseconds()), "two-round-trips-p50-µs")
	b.ReportMetric(float64(ps50.Microseconds()), "store-p50-µs")
	b.ReportMetric(float64(ps99.Microseconds()), "store-p99-µs")
	b.ReportMetric(float64(pt50.Microseconds()), "tickets-p50-µs")
	b.ReportMetric(float64(pt99.Microseconds()), "tickets-p99-µs")
	b.ReportMetric(float64((ps50 - pt50).Microseconds()), "added-p50-µs")
	b.ReportMetric(float64((ps99 - pt99).Microseconds()), "added-p99-µs")
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(b *testing.B) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return client, server
}

// BenchmarkGoroutinesPerHandshake reports the goroutines a handshake
// starts in the process (runtime/metrics /sched/goroutines-created), on
// each path: a full handshake stapled from ocspfetch's cache, a
// resumption with fleet tickets, a resumption through the session store
// (a real redis-server). The client dials without a deadline, so that it
// starts none; "crypto/tls" is the floor, one goroutine per connection.
// Target: ≤ 2 on every path.
func BenchmarkGoroutinesPerHandshake(b *testing.B) {
	_, rdb := startRedis(b)
	ca := testpki.NewCA(b, "bench CA")
	var leaf *testpki.Leaf
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(ca.OCSPResponse(b, leaf.Cert, testpki.ResponseOptions{}))
	}))
	defer responder.Close()
	leaf = ca.Issue(b, testpki.LeafOptions{OCSPServer: []string{responder.URL}})
	cert := leaf.TLSCertificate(true)

	run := func(b *testing.B, addr string, cfg *tls.Config, wantResumed bool) {
		hs := func(want bool) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c := tls.Client(conn, cfg)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := c.Handshake(); err != nil {
				b.Fatal(err)
			}
			io.ReadAll(c)
			c.Close()
			if c.ConnectionState().DidResume != want {
				b.Fatalf("resumed %v, want %v", c.ConnectionState().DidResume, want)
			}
		}
		if wantResumed {
			hs(false) // a session to resume
		}
		before := goroutinesCreated()
		for b.Loop() {
			hs(wantResumed)
		}
		b.ReportMetric(float64(goroutinesCreated()-before)/float64(b.N), "goroutines/handshake")
	}
	client := func(cache bool) *tls.Config {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if cache {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		}
		return cfg
	}

	b.Run("crypto/tls", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					s := tls.Server(c, cfg)
					s.Write([]byte("ok"))
					s.Close()
				}()
			}
		}()
		run(b, ln.Addr().String(), client(false), false)
	})
	b.Run("full_stapled", func(b *testing.B) {
		fl := newFleet(b, fleet.Options{Redis: rdb, Secret: secret})
		f, err := ocspfetch.New(ocspfetch.Options{Store: fl.Store(), HTTPClient: responder.Client()})
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Staple(context.Background(), leaf.DER, ca.DER); err != nil {
			b.Fatal(err)
		}
		m := startMember(b, rdb, memberOptions{cert: cert})
		m.srv.OnOCSPRequest(f.OCSPRequest)
		run(b, m.addr, client(false), false)
		if f.Stats().Hits < int64(b.N) {
			b.Fatalf("%d cache hits for %d handshakes", f.Stats().Hits, b.N)
		}
	})
	b.Run("resumed_tickets", func(b *testing.B) {
		m := startMember(b, rdb, memberOptions{cert: cert})
		run(b, m.addr, client(true), true)
	})
	b.Run("resumed_session_store", func(b *testing.B) {
		m := startMember(b, rdb, memberOptions{cert: cert, sessions: true})
		run(b, m.addr, client(true), true)
	})
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
