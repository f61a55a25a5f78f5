package fleet_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// stapler is a fleet member that staples: a tlsserver with an ocspfetch
// Fetcher on the fleet's Store.
type stapler struct {
	srv  *tlsserver.Server
	f    *ocspfetch.Fetcher
	addr string
}

func newStapler(t *testing.T, fl *fleet.Fleet, client *http.Client, certs ...tls.Certificate) *stapler {
	t.Helper()
	f, err := ocspfetch.New(ocspfetch.Options{
		Store: fl.Store(), HTTPClient: client, HandshakeBudget: 5 * time.Second,
		MinRefreshInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsserver.New(tlsserver.Options{Certificates: certs})
	if err != nil {
		t.Fatal(err)
	}
	srv.OnOCSPRequest(f.OCSPRequest)
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		f.Close()
	})
	return &stapler{srv: srv, f: f, addr: srv.Addr().String()}
}

// stapled handshakes with addr for serverName and returns the verified
// staple.
func stapled(t *testing.T, addr, serverName string, ca *testpki.CA) *ocsp.Response {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: ca.Pool(), ServerName: serverName})
	if err != nil {
		t.Errorf("handshake with %s: %v", addr, err)
		return nil
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	if len(cs.OCSPResponse) == 0 {
		t.Errorf("%s (%s): no staple", addr, serverName)
		return nil
	}
	leaf := cs.PeerCertificates[0]
	r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, leaf, ca.Cert)
	if err != nil || r.Status != ocsp.Good {
		t.Errorf("%s (%s): staple %v, status %v", addr, serverName, err, r)
		return nil
	}
	return r
}

func newFleet(t testing.TB, opts fleet.Options) *fleet.Fleet {
	t.Helper()
	fl, err := fleet.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	return fl
}

// Three members and two certificates, every member's first handshakes at
// once: the real `openssl ocsp` responder is asked once per certificate,
// and every handshake is stapled. A member that joins later finds the
// staples in Redis and asks nothing.
func TestStaplesOneRequestPerCertificate(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	a := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"a.test"}, OCSPServer: []string{r.URL}})
	b := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"b.test"}, OCSPServer: []string{r.URL}})
	r.Add(a, b)
	certs := []tls.Certificate{a.TLSCertificate(true), b.TLSCertificate(true)}

	var ms []*stapler
	for range 3 {
		fl := newFleet(t, fleet.Options{Redis: rdb, Secret: secret})
		ms = append(ms, newStapler(t, fl, r.Client, certs...))
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		for _, name := range []string{"a.test", "b.test"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stapled(t, m.addr, name, ca)
			}()
		}
	}
	wg.Wait()
	if n := r.Dials(); n != 2 {
		t.Errorf("the responder was asked %d times for 2 certificates by 3 members, want 2", n)
	}
	late := newStapler(t, newFleet(t, fleet.Options{Redis: rdb, Secret: secret}), r.Client, certs...)
	stapled(t, late.addr, "a.test", ca)
	stapled(t, late.addr, "b.test", ca)
	if n := r.Dials(); n != 2 {
		t.Errorf("a member that joined later asked the responder (%d requests in all, want 2)", n)
	}
	if st := late.f.Stats(); st.Loaded != 2 || st.Fetched != 0 {
		t.Errorf("late member: Loaded %d, Fetched %d; want 2 and 0", st.Loaded, st.Fetched)
	}
}

// Redis unavailable: every member asks the responder itself, and staples.
func TestStaplesWithoutRedis(t *testing.T) {
	rs, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{r.URL}})
	r.Add(leaf)
	var ms []*stapler
	for range 3 {
		ms = append(ms, newStapler(t, newFleet(t, fleet.Options{Redis: rdb, Secret: secret}), r.Client, leaf.TLSCertificate(true)))
	}
	rs.Stop()
	for i, m := range ms {
		if stapled(t, m.addr, "localhost", ca) == nil {
			t.Errorf("member %d did not staple with Redis down", i)
		}
	}
	if n := r.Dials(); n != 3 {
		t.Errorf("%d responder requests for 3 members without Redis, want 3", n)
	}
}
