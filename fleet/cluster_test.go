package fleet_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// The same fleet on a Redis Cluster of three primaries (any
// redis.UniversalClient will do): ticket keys share one hash slot through
// their hash tag, so the pipelined read of every key works; sessions and
// staples spread over the nodes; and the members behave as one server.
func TestRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	newCluster := func() redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, MaxRetries: 2})
		t.Cleanup(func() { c.Close() })
		return c
	}
	ca := testpki.NewCA(t, "fleet CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 10})
	leaf := ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{r.URL}})
	r.Add(leaf)
	cert := leaf.TLSCertificate(true)

	for _, mode := range []string{"tickets", "sessions"} {
		t.Run(mode, func(t *testing.T) {
			var ms []*member
			for range 3 {
				ms = append(ms, startMember(t, newCluster(), memberOptions{sessions: mode == "sessions", cert: cert}))
			}
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				c := newClient(ca, v)
				c.connect(t, ms[0].addr)
				for _, m := range ms[1:] {
					if !c.connect(t, m.addr) {
						t.Errorf("%s: no resumption across members on Redis Cluster", tls.VersionName(v))
					}
				}
			}
		})
	}

	t.Run("staples", func(t *testing.T) {
		before := r.Dials()
		var ss []*stapler
		for range 3 {
			ss = append(ss, newStapler(t, newFleet(t, fleet.Options{Redis: newCluster(), Secret: secret}), r.Client, cert))
		}
		var wg sync.WaitGroup
		for _, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stapled(t, s.addr, "localhost", ca)
			}()
		}
		wg.Wait()
		if n := r.Dials() - before; n != 1 {
			t.Errorf("%d responder requests from 3 members on Redis Cluster, want 1", n)
		}
	})

	// Where the keys went: every ticket key on one node, the rest spread.
	ctx := context.Background()
	cc := newCluster().(*redis.ClusterClient)
	nodesWith := map[string]map[string]bool{} // kind → node addresses
	var mu sync.Mutex                         // ForEachMaster calls in parallel
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, "tlsemit:*").Result()
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			kind := strings.SplitN(strings.TrimPrefix(k, "tlsemit:"), ":", 2)[0]
			if nodesWith[kind] == nil {
				nodesWith[kind] = map[string]bool{}
			}
			nodesWith[kind][node.Options().Addr] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(nodesWith["{ticket-keys}"]); n != 1 {
		t.Errorf("ticket keys on %d nodes, want 1 (one hash slot)", n)
	}
	if len(nodesWith["session"]) == 0 || len(nodesWith["ocsp"]) == 0 {
		t.Errorf("no sessions or staples found in the cluster: %v", nodesWith)
	}
}
