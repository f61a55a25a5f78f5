// Package tlsserver is a crypto/tls server that emits Node.js's tls.Server
// events, with Node's names and Go's types, and 'OCSPRequest' exactly
// right.
//
// A [Server] embeds an [events.Emitter]. Register with On(name, fn) or the
// typed methods ([Server.OnOCSPRequest], [Server.OnSecureConnection], …),
// which share one registry, so ListenerCount and Off see both.
//
// # 'OCSPRequest'
//
// The event fires for a full handshake (never a resumed one, in TLS 1.2 or
// 1.3) whose ClientHello carries status_request, with the DER of the
// certificate served on that connection (after SNI selection and
// SetSecureContext), the DER of its issuer (from the served chain, else the
// context's CA, else nil) and a callback:
//
//	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
//		cb(nil, stapleFor(cert)) // or cb(err, nil) to refuse the connection
//	})
//
// Eligibility is Node's: a listener is called for a connection only if it
// was registered when that connection's handshake began (at accept or
// ServeConn, before the 'connection' listeners run) and is still registered
// when the ClientHello is processed. All eligible listeners are called in
// order and share one callback; the first call decides. A non-empty
// response is stapled on this connection only; nil or empty staples
// nothing; an error destroys the connection and is reported through
// 'tlsClientError'.
//
// Where Node hangs or crashes, this package does better, on purpose:
//
//   - A second callback call destroys the connection with
//     [ErrMultipleCallback], before or after the handshake completes. After
//     it, Node emits the error on the socket's own 'error' event; a
//     *tls.Conn has none, so 'tlsClientError' reports it (still at most once
//     per connection).
//   - A callback never called: after HandshakeTimeout the connection is
//     destroyed and 'tlsClientError' reports [ErrHandshakeTimeout]; Node
//     leaves the socket open.
//   - A client that hangs up while its callback is pending is noticed (the
//     server watches the socket while it waits) and reported with
//     [ErrSocketClosed]; a later callback call is a no-op. Close and
//     Shutdown abort pending waits.
//   - A listener that panics is recovered: that connection is destroyed and
//     'tlsClientError' reports [ErrListenerPanic] wrapping a [PanicError];
//     the other connections are unaffected (Node's process dies).
//   - A waiting handshake costs its goroutines (two while parked) and
//     nothing else.
//
// # How it maps onto crypto/tls
//
// Certificate selection and 'OCSPRequest' run in tls.Config.GetCertificate,
// which crypto/tls calls only for full handshakes in TLS 1.3. In TLS 1.2 it
// is called before resumption is decided, so for a connection that asked
// for status the emission waits for UnwrapSession, where the server decides
// resumption itself with crypto/tls's own rules. The staple is set on a
// per-connection copy of the tls.Certificate; shared certificates are never
// modified. A per-connection tls.Config is made only when a hook needs one
// (key log, session store, TLS 1.2 status request).
//
// 'keylog' uses a per-handshake KeyLogWriter, for connections whose
// handshake began while a 'keylog' listener existed. 'newSession' and
// 'resumeSession' map onto WrapSession and UnwrapSession: the ticket is a
// random 32-byte id, the listener stores the session data under it, and
// the handshake waits for done or cb; cb(nil, nil) means a full handshake.
// In TLS 1.3, Go issues one ticket before the handshake completes, so
// 'newSession' comes once, before 'secureConnection' (Node: twice, after).
//
// Ticket keys take Node's 48-byte form ([Server.TicketKeys],
// [Server.SetTicketKeys]); crypto/tls's 32-byte key is their SHA-256.
//
// (*tls.Conn).NetConn returns the server's wrapper of the accepted
// connection, which tracks its closing for Connections and 'close'; its
// NetConn method returns the accepted connection itself.
//
// [Server.Listener] feeds net/http: http.Server.Serve(srv.Listener()),
// including HTTP/2 when the Config's NextProtos offer "h2".
//
// The server emits 'error' only when an 'error' listener exists, else it
// logs to Options.Logger: a network failure never panics through the
// emitter's unhandled-'error' rule.
package tlsserver
