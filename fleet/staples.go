package fleet

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/ocspfetch"
)

// maxStapleValue bounds what a staple read takes from Redis. ocspfetch
// verifies (and size-checks) whatever it loads; this only keeps a huge
// value from being read whole.
const maxStapleValue = 1 << 20

// stapleTTLWithoutNextUpdate is how long a response without NextUpdate is
// kept, as ocspfetch serves one (ocspfetch.NoNextUpdateLifetime).
const stapleTTLWithoutNextUpdate = ocspfetch.NoNextUpdateLifetime

// Store returns an ocspfetch.LockingStore that shares verified OCSP
// responses among the fleet's members: give it to every member's
// ocspfetch.Options. Before asking the responder, a member adopts a fresher
// response another member stored, and takes a per-certificate lock (SET NX
// PX), so that one member asks while the others wait for its answer within
// their HandshakeBudget: one responder request per certificate per refresh
// for the whole fleet.
//
// Staples are public and every Fetcher verifies what it loads, so Redis is
// trusted for availability only. A response expires from Redis at its
// NextUpdate. Calls are bounded by OpTimeout; with Redis unavailable each
// member asks the responder itself, as a lone server would.
func (f *Fleet) Store() ocspfetch.LockingStore {
	return &stapleStore{f: f, seen: make(map[string]time.Time)}
}

type stapleStore struct {
	f *Fleet

	mu     sync.Mutex
	seen   map[string]time.Time // key → the newest ThisUpdate this member stored or read
	pruned int                  // len(seen) after the last pruning
}

// seenFor is how long a key is remembered: longer than any OCSP response
// lives, so that a replaced certificate's key is forgotten.
const seenFor = 30 * 24 * time.Hour

// saw records that this member has a response under key produced at
// thisUpdate, and reports whether it is newer than any it had: read from
// Redis, that is a staple another member fetched.
func (s *stapleStore) saw(key string, thisUpdate time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !thisUpdate.After(s.seen[key]) {
		return false
	}
	s.seen[key] = thisUpdate
	if len(s.seen) > 2*max(s.pruned, 512) {
		for k, t := range s.seen {
			if time.Since(t) > seenFor {
				delete(s.seen, k)
			}
		}
		s.pruned = len(s.seen)
	}
	return true
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
	val, err := do(f, &f.staples, "GETRANGE", func(opCtx context.Context) ([]byte, error) {
		ctx, cancel := mergeDone(opCtx, ctx)
		defer cancel()
		return f.rdb.GetRange(ctx, name, 0, maxStapleValue).Bytes()
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		f.failed(&f.staples, "GETRANGE", err)
		return nil, err
	}
	f.succeeded(&f.staples)
	if len(val) == 0 {
		return nil, ocspfetch.ErrCacheMiss
	}
	if len(val) > maxStapleValue {
		f.junk(&f.staples, name, errors.New("value too large"))
		return nil, ocspfetch.ErrCacheMiss
	}
	if r, err := ocsp.ParseResponse(val, nil); err == nil && s.saw(key, r.ThisUpdate) {
		f.metrics.adopted.Add(ctx, 1, f.metrics.none...)
	}
	return val, nil
}

// Store saves der under key until the response's NextUpdate.
func (s *stapleStore) Store(ctx context.Context, key string, der []byte) error {
	f := s.f
	if f.skip(&f.staples) {
		return errSkipped
	}
	ttl := stapleTTLWithoutNextUpdate
	if r, err := ocsp.ParseResponse(der, nil); err == nil {
		if !r.NextUpdate.IsZero() {
			ttl = time.Until(r.NextUpdate)
		}
		if ttl > 0 {
			s.saw(key, r.ThisUpdate)
		}
	}
	if ttl <= 0 {
		return nil // nothing worth sharing
	}
	_, err := do(f, &f.staples, "SET", func(opCtx context.Context) (string, error) {
		ctx, cancel := mergeDone(opCtx, ctx)
		defer cancel()
		return f.rdb.Set(ctx, s.name(key), der, ttl).Result()
	})
	if err != nil {
		f.failed(&f.staples, "SET", err)
		return err
	}
	f.succeeded(&f.staples)
	return nil
}

// Delete removes key.
func (s *stapleStore) Delete(ctx context.Context, key string) error {
	f := s.f
	if f.skip(&f.staples) {
		return errSkipped
	}
	_, err := do(f, &f.staples, "DEL", func(opCtx context.Context) (int64, error) {
		ctx, cancel := mergeDone(opCtx, ctx)
		defer cancel()
		return f.rdb.Del(ctx, s.name(key)).Result()
	})
	if err != nil {
		f.failed(&f.staples, "DEL", err)
	}
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
	ok, err := do(f, &f.staples, "SET", func(opCtx context.Context) (bool, error) {
		ctx, cancel := mergeDone(opCtx, ctx)
		defer cancel()
		return f.rdb.SetNX(ctx, name, token, ttl).Result()
	})
	if err != nil {
		f.failed(&f.staples, "SET NX", err)
		return nil, err
	}
	f.succeeded(&f.staples)
	if !ok {
		return nil, ocspfetch.ErrLocked
	}
	return func(ctx context.Context) error {
		_, err := do(f, &f.staples, "EVALSHA", func(opCtx context.Context) (any, error) {
			ctx, cancel := mergeDone(opCtx, ctx)
			defer cancel()
			return unlockScript.Run(ctx, f.rdb, []string{name}, token).Result()
		})
		return err
	}, nil
}
