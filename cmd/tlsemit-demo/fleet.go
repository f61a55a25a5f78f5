package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// fleetMember is one server of the fleet tour: its own Redis client,
// fleet.Fleet, ocspfetch.Fetcher and tlsserver.Server, as a process of a
// real fleet would have.
type fleetMember struct {
	name    string
	rdb     *redis.Client
	fl      *fleet.Fleet
	fetcher *ocspfetch.Fetcher
	srv     *tlsserver.Server
	tickets func() // detaches TicketKeys
	detach  func() // Sessions, while attached
}

// runFleet is `make fleet`: a local redis-server, three members, and a
// client that resumes across them.
func runFleet(ctx context.Context, cfg config, tr *tracer) error {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("make fleet needs redis-server (Debian package redis-server; `make fleet` installs it as root)")
	}
	dir, err := os.MkdirTemp("", "tlsemit-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if cfg.validity <= 0 {
		cfg.validity = time.Minute
	}
	d := &demo{cfg: cfg, tr: tr, dir: dir}

	tr.step("1. a local redis-server (persistence off), a throwaway PKI and an OCSP responder")
	rs, err := redistest.Run(dir)
	if err != nil {
		return err
	}
	defer rs.Stop()
	tr.log("redis", "redis-server on %s", rs.Addr)
	stopResponder, err := d.startPKIAndResponder()
	if err != nil {
		return err
	}
	defer stopResponder()

	tr.step("2. three members: each its own fleet.Fleet, an ocspfetch.Fetcher on fl.Store(), a tlsserver.Server with fl.TicketKeys")
	secret := []byte("tlsemit make-fleet demo secret!!") // 32 bytes, the same on every member
	var ms []*fleetMember
	defer func() {
		for _, m := range ms {
			m.close()
		}
	}()
	for _, name := range []string{"member A", "member B", "member C"} {
		m, err := d.startMember(ctx, name, rs.Addr, secret)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}

	tr.step("3. a first client on every member at once: the fleet asks the responder once")
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.fleetClient(m, "first client of "+m.name, nil, 0, false)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if n := d.resp.requests.Load(); n != 1 {
		return fmt.Errorf("the responder was asked %d times by 3 members, want 1", n)
	}
	tr.log("demo", "responder requests so far: %d, for 3 members", d.resp.requests.Load())

	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		tr.step("4. one client across the members with fleet tickets, %s: full on A, resumed on B and C", tls.VersionName(v))
		cache := tls.NewLRUClientSessionCache(4)
		for i, m := range ms {
			if err := d.fleetClient(m, "roaming client", cache, v, i > 0); err != nil {
				return err
			}
		}
	}

	tr.step("5. the session store instead: fl.Sessions(srv) on every member, sessions sealed in Redis")
	for _, m := range ms {
		// A listener of our own first, to show the event; Sessions' own
		// listener answers it.
		logID := m.srv.OnResumeSession(func([]byte, func(error, []byte)) {
			tr.log(m.name, "'resumeSession': the session is read from Redis")
		})
		detach, err := m.fl.Sessions(m.srv)
		if err != nil {
			return err
		}
		m.detach = func() {
			detach()
			m.srv.Off(tlsserver.EventResumeSession, logID)
		}
	}
	cache := tls.NewLRUClientSessionCache(4)
	for i, m := range ms {
		if err := d.fleetClient(m, "session-store client", cache, tls.VersionTLS13, i > 0); err != nil {
			return err
		}
	}
	keys, err := ms[0].rdb.Keys(ctx, "tlsemit:*").Result()
	if err != nil {
		return err
	}
	tr.log("redis", "%d keys under tlsemit: (ticket keys, sessions, the staple, no lock left):", len(keys))
	for _, k := range keys {
		tr.log("redis", "  %s", k)
	}
	for _, m := range ms {
		m.detach()
	}

	tr.step("6. Redis stopped: handshakes go on, and tickets still resume across members (the keys are in memory)")
	rs.Stop()
	cache = tls.NewLRUClientSessionCache(4)
	for i, m := range ms {
		if err := d.fleetClient(m, "client during the outage", cache, tls.VersionTLS13, i > 0); err != nil {
			return err
		}
	}

	tr.step("done: %d responder request for 1 certificate and 3 members; every resumption across members as expected", d.resp.requests.Load())
	return nil
}

func (d *demo) startMember(ctx context.Context, name, redisAddr string, secret []byte) (*fleetMember, error) {
	tr := d.tr
	m := &fleetMember{name: name}
	m.rdb = redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true, MaxRetries: -1})
	fl, err := fleet.New(fleet.Options{Redis: m.rdb, Secret: secret})
	if err != nil {
		m.close()
		return nil, err
	}
	m.fl = fl
	m.fetcher, err = ocspfetch.New(ocspfetch.Options{
		Store:              fl.Store(),
		MinRefreshInterval: time.Second,
		OnEvent: func(ev ocspfetch.Event) {
			tr.log(name, "ocspfetch: %s for serial %s", ev.Kind, ev.Serial)
		},
	})
	if err != nil {
		m.close()
		return nil, err
	}
	m.srv, err = tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{d.leaf.TLSCertificate(true)}, HandshakeTimeout: 10 * time.Second})
	if err != nil {
		m.close()
		return nil, err
	}
	m.srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		tr.log(name, "'OCSPRequest'")
		m.fetcher.OCSPRequest(cert, issuer, cb)
	})
	m.srv.OnSecureConnection(func(c *tls.Conn) {
		st := c.ConnectionState()
		tr.log(name, "'secureConnection' %s, resumed %v", tls.VersionName(st.Version), st.DidResume)
		c.Write([]byte("hello from " + name))
		c.Close()
	})
	if m.tickets, err = fl.TicketKeys(ctx, m.srv); err != nil {
		m.close()
		return nil, err
	}
	if err := m.srv.Listen(ctx, "tcp", "127.0.0.1:0"); err != nil {
		m.close()
		return nil, err
	}
	tr.log(name, "listening on %s", m.srv.Addr())
	return m, nil
}

func (m *fleetMember) close() {
	if m.tickets != nil {
		m.tickets()
	}
	if m.srv != nil {
		m.srv.Close()
	}
	if m.fetcher != nil {
		m.fetcher.Close()
	}
	if m.fl != nil {
		m.fl.Close()
	}
	m.rdb.Close()
}

// fleetClient handshakes with m (version 0: the default), checks the staple
// of a full handshake, and checks whether the handshake resumed.
func (d *demo) fleetClient(m *fleetMember, name string, cache tls.ClientSessionCache, version uint16, wantResumed bool) error {
	pool := x509.NewCertPool()
	pool.AddCert(d.ca.Cert)
	cfg := &tls.Config{ServerName: "localhost", RootCAs: pool, ClientSessionCache: cache, MinVersion: version, MaxVersion: version}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", m.srv.Addr().String(), cfg)
	if err != nil {
		return fmt.Errorf("%s → %s: %v", name, m.name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(conn) // the greeting, and the session ticket with it
	st := conn.ConnectionState()
	var o outcome
	d.report(name+" → "+m.name, tls.VersionName(st.Version), st.DidResume, st.OCSPResponse, &o)
	if st.DidResume != wantResumed {
		return fmt.Errorf("%s → %s: resumed %v, want %v", name, m.name, st.DidResume, wantResumed)
	}
	if !st.DidResume && o.staple == nil {
		return fmt.Errorf("%s → %s: full handshake without a verified staple", name, m.name)
	}
	return nil
}
