package fleet

import (
	"context"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

// maxStapleValue bounds what a staple read takes from Redis. ocspfetch
// verifies (and size-checks) whatever it loads; this only keeps a huge
// value from being read whole.
const maxStapleValue = 1 << 20

// Store returns an ocspfetch.LockingStore that shares verified OCSP
// responses among the fleet's members: give it to every member's
// ocspfetch.Options. Before asking the responder, a member adopts a fresher
// response another member stored, and takes a per-certificate lock (SET NX
// PX), so that one member asks while the others wait for its answer within
// their HandshakeBudget: one responder request per certificate per refresh
// for the whole fleet.
//
// Staples are public and every Fetcher verifies what it loads, so Redis is
// trusted for availability only. A response expires from Redis at the
// expiry ocspfetch stores it with (its NextUpdate). Each call has the
// caller's deadline (a Fetcher's StoreTimeout), or OpTimeout when ctx has
// none, and runs on the caller's goroutine (a Fetcher runs Store calls on
// goroutines of their own) when the client honours context deadlines. A
// Redis call that fails, or gets no answer within OpTimeout, is an outage,
// after which calls fail at once (the fleet probes Redis in the
// background): a refresh then keeps serving its staple and tries the
// fleet again later, and a member without a staple asks the responder
// itself, as a lone server would.
func (f *Fleet) Store() ocspfetch.LockingStore {
	return &stapleStore{f: f, seen: make(map[string]seenStaple)}
}

type stapleStore struct {
	f *Fleet

	mu     sync.Mutex
	seen   map[string]seenStaple // key → the response this member last stored or read
	pruned int                   // len(seen) after the last pruning
}

type seenStaple struct {
	sum uint64
	at  time.Time
}

// seenFor is how long a key is remembered: longer than any OCSP response
// lives, so that a replaced certificate's key is forgotten.
const seenFor = 30 * 24 * time.Hour

var stapleSeed = maphash.MakeSeed()

// saw records that this member has der under key, and reports whether it
// is a response it did not have: read from Redis, that is a staple another
// member fetched.
func (s *stapleStore) saw(key string, der []byte) bool {
	sum := maphash.Bytes(stapleSeed, der)
	now := s.f.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.seen[key]
	s.seen[key] = seenStaple{sum, now}
	if len(s.seen) > 2*max(s.pruned, 512) {
		for k, v := range s.seen {
			if now.Sub(v.at) > seenFor {
				delete(s.seen, k)
			}
		}
		s.pruned = len(s.seen)
	}
	return !ok || old.sum != sum
}

func (s *stapleStore) name(key string) string { return s.f.prefix + "ocsp:" + key }

func (s *stapleStore) lockName(key string) string { return s.f.prefix + "ocsp-lock:" + key }

// Load returns the response stored under key.
func (s *stapleStore) Load(ctx context.Context, key string) ([]byte, error) {
	f := s.f
	if f.skip(&f.staples) {
		return nil, errSkipped
	}
	name := s.name(key)
	val, err := do(f, ctx, &f.staples, "GETRANGE", func(ctx context.Context) ([]byte, error) {
		return f.rdb.GetRange(ctx, name, 0, maxStapleValue).Bytes()
	})
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		f.junk(&f.staples, name, err)
		return nil, ocspfetch.ErrCacheMiss // the fetch that follows replaces it
	}
	if err != nil {
		return nil, err
	}
	if len(val) == 0 {
		return nil, ocspfetch.ErrCacheMiss
	}
	if len(val) > maxStapleValue {
		f.junk(&f.staples, name, errors.New("value too large"))
		return nil, ocspfetch.ErrCacheMiss
	}
	if s.saw(key, val) {
		f.stats.staplesAdopted.Add(1)
		f.metrics.adopted.Add(ctx, 1, f.metrics.none...)
	}
	return val, nil
}

// Store saves der under key until expires.
func (s *stapleStore) Store(ctx context.Context, key string, der []byte, expires time.Time) error {
	f := s.f
	ttl := expires.Sub(f.now())
	if ttl <= 0 {
		return nil // nothing worth sharing
	}
	s.saw(key, der)
	if f.skip(&f.staples) {
		return errSkipped
	}
	_, err := do(f, ctx, &f.staples, "SET", func(ctx context.Context) (string, error) {
		return f.rdb.Set(ctx, s.name(key), der, ttl).Result()
	})
	return err
}

// Delete removes key.
func (s *stapleStore) Delete(ctx context.Context, key string) error {
	f := s.f
	if f.skip(&f.staples) {
		return errSkipped
	}
	_, err := do(f, ctx, &f.staples, "DEL", func(ctx context.Context) (int64, error) {
		return f.rdb.Del(ctx, s.name(key)).Result()
	})
	return err
}

// unlockScript deletes a lock only if it still holds the token it was taken
// with, so that a member whose lock lapsed cannot release another's.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Lock takes key's lock for ttl, or fails with ocspfetch.ErrLocked while
// another member holds it.
func (s *stapleStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, error) {
	f := s.f
	if f.skip(&f.staples) {
		return nil, errSkipped
	}
	name := s.lockName(key)
	token := hex.EncodeToString(randomBytes(16))
	ok, err := do(f, ctx, &f.staples, "SET", func(ctx context.Context) (bool, error) {
		return f.rdb.SetNX(ctx, name, token, ttl).Result()
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ocspfetch.ErrLocked
	}
	return func(ctx context.Context) error {
		_, err := do(f, ctx, &f.staples, "EVALSHA", func(ctx context.Context) (any, error) {
			return unlockScript.Run(ctx, f.rdb, []string{name}, token).Result()
		})
		return err
	}, nil
}
