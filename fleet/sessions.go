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
// to any member, finds it; a resumption also waits for one read. Both run
// on the handshake's own goroutine, each bounded by OpTimeout, and during
// an outage they are skipped without waiting (the fleet probes Redis in the
// background). A session that cannot be read (Redis down, expired,
// unreadable) means a full handshake, never a failed one. Session state is
// sealed with the fleet's Secret and expires after SessionTTL.
//
// Sessions registers srv's 'newSession' and 'resumeSession' listeners;
// while they exist the server issues session ids instead of self-contained
// tickets (so TicketKeys has no effect on it). detach removes them, once
// however often it is called; Close does too. The error is non-nil, and
// nothing is registered, for a nil srv or a closed Fleet.
func (f *Fleet) Sessions(srv *tlsserver.Server) (detach func(), err error) {
	if srv == nil {
		return nil, errors.New("fleet: Sessions: nil server")
	}
	if f.isClosed() {
		return nil, ErrClosed
	}
	newID := srv.OnNewSession(func(id, data []byte, done func()) {
		f.saveSession(id, data)
		done()
	})
	resumeID := srv.OnResumeSession(func(id []byte, cb func(err error, data []byte)) {
		cb(nil, f.loadSession(id))
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
		return nil, ErrClosed
	}
	return undo, nil
}

func (f *Fleet) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

func (f *Fleet) sessionKey(id []byte) string { return f.prefix + "session:" + hex.EncodeToString(id) }

func (f *Fleet) saveSession(id, data []byte) {
	if f.skip(&f.sessions) {
		f.stats.sessionWriteFailures.Add(1)
		return
	}
	key := f.sessionKey(id)
	val := f.session.seal(key, data)
	_, err := do(f, nil, &f.sessions, "SET", func(ctx context.Context) (string, error) {
		return f.rdb.Set(ctx, key, val, f.ttl).Result()
	})
	if err != nil {
		f.stats.sessionWriteFailures.Add(1)
	}
}

// loadSession returns the session stored under id, or nil for a full
// handshake.
func (f *Fleet) loadSession(id []byte) []byte {
	data := f.readSession(id)
	if data == nil {
		f.stats.sessionMisses.Add(1)
	} else {
		f.stats.sessionHits.Add(1)
	}
	return data
}

func (f *Fleet) readSession(id []byte) []byte {
	if f.skip(&f.sessions) {
		return nil
	}
	key := f.sessionKey(id)
	val, err := do(f, nil, &f.sessions, "GETRANGE", func(ctx context.Context) ([]byte, error) {
		return f.rdb.GetRange(ctx, key, 0, maxSessionValue).Bytes()
	})
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		f.junk(&f.sessions, key, err)
		return nil
	}
	if err != nil || len(val) == 0 {
		return nil // Redis unavailable, not there, or expired
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
