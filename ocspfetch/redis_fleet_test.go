package ocspfetch_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
)

// Fetchers sharing a real redis-server through fleet.Store, on a fake
// clock that the test moves: refreshes that are hours apart run in
// milliseconds.

// redisFleet is m members, each with its own Redis client, Fleet and
// Fetcher, and a responder that counts its requests and signs answers
// produced at the clock's now, valid an hour.
type redisFleet struct {
	rs       *redistest.Server
	clk      *testclock.Clock
	ca       *testpki.CA
	leaf     *testpki.Leaf
	requests atomic.Int64
	fls      []*fleet.Fleet
	fs       []*ocspfetch.Fetcher
}

const life = time.Hour

func newRedisFleet(t *testing.T, m int) *redisFleet {
	rf := &redisFleet{rs: redistest.Start(t), clk: testclock.New(), ca: testpki.NewCA(t, "fleet CA")}
	resp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rf.requests.Add(1)
		now := rf.clk.Now()
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(rf.ca.OCSPResponse(t, rf.leaf.Cert, testpki.ResponseOptions{ThisUpdate: now, NextUpdate: now.Add(life)}))
	}))
	t.Cleanup(resp.Close)
	rf.leaf = rf.ca.Issue(t, testpki.LeafOptions{OCSPServer: []string{resp.URL}})
	for range m {
		fl, err := fleet.New(fleet.Options{Redis: rf.rs.Client(t), Secret: []byte("a 32-byte secret for the members")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fl.Close() })
		f, err := ocspfetch.NewWithoutLoop(ocspfetch.Options{
			Store: fl.Store(), Now: rf.clk.Now, HTTPClient: resp.Client(), StoreTimeout: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		rf.fls, rf.fs = append(rf.fls, fl), append(rf.fs, f)
	}
	return rf
}

// staple asks every member for the staple at once.
func (rf *redisFleet) staple(t *testing.T) []*ocspfetch.Staple {
	out := make([]*ocspfetch.Staple, len(rf.fs))
	var wg sync.WaitGroup
	for i, f := range rf.fs {
		wg.Go(func() {
			s, err := f.Staple(t.Context(), rf.leaf.DER, rf.ca.DER)
			if err != nil {
				t.Errorf("member %d: %v", i, err)
			}
			out[i] = s
		})
	}
	wg.Wait()
	return out
}

// refresh runs every member's due refreshes at once.
func (rf *redisFleet) refresh(t *testing.T) {
	var wg sync.WaitGroup
	for i, f := range rf.fs {
		wg.Go(func() {
			if ocspfetch.RunDue(f, rf.clk.Now()) < 0 {
				t.Errorf("member %d: its refresh did not end", i)
			}
		})
	}
	wg.Wait()
}

// served checks that every member staples, and returns the oldest
// ThisUpdate served.
func (rf *redisFleet) served(t *testing.T, when string) time.Time {
	t.Helper()
	var oldest time.Time
	for i, f := range rf.fs {
		cs := f.Certificates()
		if len(cs) != 1 || !cs[0].Stapled {
			t.Fatalf("%s: member %d staples nothing: %+v", when, i, cs)
		}
		if cs[0].LastError != nil {
			t.Logf("%s: member %d: last error %v (fleet %+v)", when, i, cs[0].LastError, rf.fls[i].Stats())
		}
		if tu := cs[0].Staple.ThisUpdate; oldest.IsZero() || tu.Before(oldest) {
			oldest = tu
		}
	}
	return oldest
}

// Several members refresh at once, again and again: the responder gets one
// request per refresh for the whole fleet, and every member serves the
// newer answer (moved here from fleet, where real 4-second answers took
// 9 s of waiting).
func TestFleetOneRequestPerRefresh(t *testing.T) {
	rf := newRedisFleet(t, 4)
	rf.staple(t)
	if n := rf.requests.Load(); n != 1 {
		t.Fatalf("%d responder requests for 4 members' first staple, want 1", n)
	}
	last := rf.served(t, "first")
	for i := range 3 {
		rf.clk.Advance(life * 6 / 10) // past every member's refresh time
		rf.refresh(t)
		if n := rf.requests.Load(); n != int64(i+2) {
			t.Fatalf("refresh %d: %d responder requests in all, want %d: the members asked separately", i+1, n, i+2)
		}
		tu := rf.served(t, "after a refresh")
		if !tu.After(last) {
			for j, f := range rf.fs {
				c := f.Certificates()[0]
				t.Logf("member %d: %v next %v stats %+v", j, c.Staple.ThisUpdate, c.NextRefresh, f.Stats())
			}
			t.Fatalf("refresh %d: a member still serves the answer of %v (now %v)", i+1, tu, rf.clk.Now())
		}
		last = tu
	}
}

// A Redis hang during a refresh wave: every member still holds a staple
// valid for half its life, so it keeps serving it and tries the fleet's
// lock again later, instead of all of them asking the responder. Once
// Redis answers, one member asks for all. With Redis still hung as the
// staples near their end, each member asks alone, and no staple lapses.
func TestFleetRedisHangDuringRefreshWave(t *testing.T) {
	const members = 5
	rf := newRedisFleet(t, members)
	rf.staple(t)
	first := rf.served(t, "before the hang")

	// The wave, with Redis hung: 5 s of the members' clock.
	if err := rf.rs.Pause(); err != nil {
		t.Fatal(err)
	}
	rf.clk.Advance(life * 6 / 10)
	for range 5 {
		rf.refresh(t)
		rf.clk.Advance(time.Second)
	}
	if n := rf.requests.Load() - 1; n != 0 {
		t.Errorf("%d responder requests from %d members during a 5 s Redis hang, with every staple valid for another half of its life", n, members)
	}
	rf.served(t, "during the hang")
	if err := rf.rs.Resume(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, func() bool { // each Fleet's probe finds Redis again
		for _, fl := range rf.fls {
			if !fl.Stats().RedisReachable {
				return false
			}
		}
		return true
	})
	rf.clk.Advance(time.Minute) // past every member's retry
	rf.refresh(t)
	if n := rf.requests.Load() - 1; n < 1 || n > 2 {
		t.Errorf("%d responder requests for the refresh after a 5 s Redis hang, want 1 (at most 2)", n)
	}
	if tu := rf.served(t, "after the hang"); !tu.After(first) {
		t.Errorf("a member still serves the answer from before the wave")
	}

	// Hung again for the next wave, and for good: each member asks alone
	// when its staple nears its end, and none lapses.
	before := rf.requests.Load()
	second := rf.served(t, "before the second hang")
	if err := rf.rs.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.rs.Resume() })
	for step := range 12 {
		rf.clk.Advance(life / 12)
		rf.refresh(t)
		rf.served(t, "while Redis stays hung")
		if step == 5 && rf.requests.Load() != before {
			t.Errorf("members asked the responder alone at half of the staple's life")
		}
	}
	if n := rf.requests.Load() - before; n != members {
		t.Errorf("%d responder requests from %d members that could not share for a whole lifetime, want one each", n, members)
	}
	if tu := rf.served(t, "at the end"); !tu.After(second) {
		t.Errorf("a member did not refresh on its own")
	}
}
