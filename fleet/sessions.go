package fleet

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// maxSessionValue bounds what a session read takes from Redis: a session
// with a long client-certificate chain is a few KiB; anything near this is
// not ours.
const maxSessionValue = 256 << 10

// Sessions makes srv keep its TLS sessions in Redis, as Node's external
// session store does with 'newSession' and 'resumeSession' listeners: a
// client that resumed on one member resumes on any. A handshake that issues
// a session waits for its write (crypto/tls issues one on resumed
// handshakes too), so that a client opening its next connections at once,
// to any member, finds it; a resumption also waits for one read. Each call
// is bounded by OpTimeout, and a session that cannot be read (Redis down,
// expired, unreadable) means a full handshake, never a failed one. Session state is sealed with the
// fleet's Secret and expires after SessionTTL.
//
// Sessions registers srv's 'newSession' and 'resumeSession' listeners;
// while they exist the server issues session ids instead of self-contained
// tickets (so TicketKeys has no effect on it). detach removes them; Close
// does too.
func (f *Fleet) Sessions(srv *tlsserver.Server) (detach func()) {
	newID := srv.OnNewSession(func(id, data []byte, done func()) {
		if !f.goTracked(func() {
			f.saveSession(id, data)
			done()
		}) {
			done()
		}
	})
	resumeID := srv.OnResumeSession(func(id []byte, cb func(err error, data []byte)) {
		if !f.goTracked(func() { cb(nil, f.loadSession(id)) }) {
			cb(nil, nil)
		}
	})
	var once sync.Once
	f.mu.Lock()
	f.nextReg++
	reg := f.nextReg
	undo := func() {
		once.Do(func() {
			srv.Off(tlsserver.EventNewSession, newID)
			srv.Off(tlsserver.EventResumeSession, resumeID)
			f.mu.Lock()
			delete(f.detaches, reg)
			f.mu.Unlock()
		})
	}
	closed := f.closed
	if !closed {
		f.detaches[reg] = undo
	}
	f.mu.Unlock()
	if closed {
		undo()
	}
	return undo
}

func (f *Fleet) sessionKey(id []byte) string { return f.prefix + "session:" + hex.EncodeToString(id) }

func (f *Fleet) saveSession(id, data []byte) {
	if f.skip(&f.sessions) {
		return
	}
	key := f.sessionKey(id)
	val := f.session.seal(key, data)
	_, err := do(f, &f.sessions, "SET", func(ctx context.Context) (string, error) {
		return f.rdb.Set(ctx, key, val, f.ttl).Result()
	})
	if err != nil {
		f.failed(&f.sessions, "SET", err)
		return
	}
	f.succeeded(&f.sessions)
}

// loadSession returns the session stored under id, or nil for a full
// handshake.
func (f *Fleet) loadSession(id []byte) []byte {
	if f.skip(&f.sessions) {
		return nil
	}
	key := f.sessionKey(id)
	val, err := do(f, &f.sessions, "GETRANGE", func(ctx context.Context) ([]byte, error) {
		return f.rdb.GetRange(ctx, key, 0, maxSessionValue).Bytes()
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		f.failed(&f.sessions, "GETRANGE", err)
		return nil
	}
	f.succeeded(&f.sessions)
	if len(val) == 0 {
		return nil // not there, or expired
	}
	if len(val) > maxSessionValue {
		f.junk(&f.sessions, key, errors.New("value too large"))
		return nil
	}
	data, err := f.session.open(key, val)
	if err != nil {
		f.junk(&f.sessions, key, err)
		return nil
	}
	return data
}
