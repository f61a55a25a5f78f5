package fleet_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
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

func newFleet(t *testing.T, opts fleet.Options) *fleet.Fleet {
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

// With answers that live 4 s, members refresh again and again: the fleet
// asks the responder once per certificate per refresh, and every member
// staples the newer answer.
func TestStaplesOneRequestPerRefresh(t *testing.T) {
	_, rdb := startRedis(t)
	ca := testpki.NewCA(t, "fleet CA")
	var requests atomic.Int64
	var mu sync.Mutex
	thisUpdates := map[time.Time]bool{}
	var leaf *testpki.Leaf
	resp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		requests.Add(1)
		now := time.Now().Truncate(time.Second)
		mu.Lock()
		thisUpdates[now] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(ca.OCSPResponse(t, leaf.Cert, testpki.ResponseOptions{ThisUpdate: now, NextUpdate: now.Add(4 * time.Second)}))
	}))
	defer resp.Close()
	leaf = ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{resp.URL}})
	cert := leaf.TLSCertificate(true)
	var ms []*stapler
	for range 3 {
		ms = append(ms, newStapler(t, newFleet(t, fleet.Options{Redis: rdb, Secret: secret}), resp.Client(), cert))
	}
	seen := make([]time.Time, len(ms))
	deadline := time.Now().Add(9 * time.Second)
	advanced := make([]int, len(ms))
	for time.Now().Before(deadline) {
		for i, m := range ms {
			if r := stapled(t, m.addr, "localhost", ca); r != nil && r.ThisUpdate.After(seen[i]) {
				seen[i] = r.ThisUpdate
				advanced[i]++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	distinct := len(thisUpdates)
	mu.Unlock()
	n := requests.Load()
	t.Logf("%d responder requests, %d distinct answers, staples advanced %v times per member", n, distinct, advanced)
	for i, a := range advanced {
		if a < 3 {
			t.Errorf("member %d stapled only %d successive answers in 9 s of 4-second answers", i, a)
		}
	}
	// One request per refresh: about as many requests as successive answers
	// one member stapled (three members asking on their own would make
	// three times as many), and no two requests in the same second.
	if n > int64(slices.Max(advanced))+2 || n > int64(distinct) {
		t.Errorf("%d responder requests (%d distinct answers) while each member stapled %v successive answers: members asked separately", n, distinct, advanced)
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
