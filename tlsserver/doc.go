// Package tlsserver is a crypto/tls server that emits Node.js's tls.Server
// events, with Node's names and Go's types, and 'OCSPRequest' exactly
// right.
//
// A [Server] embeds an [events.Emitter]. Register with On(name, fn) or the
// typed methods ([Server.OnOCSPRequest], [Server.OnSecureConnection], …,
// one for each of the eleven events), which share one registry, so
// ListenerCount and Off see both. A forged emission (srv.Emit with
// arguments a typed listener cannot take) skips that listener and is
// reported through 'error' with [ErrInvalidArgType]; it never panics.
//
// # 'OCSPRequest'
//
// The event fires for every full handshake (never a resumed one, in TLS 1.2
// or 1.3) whose ClientHello carries status_request, with the DER of the
// certificate served on that connection (after SNI selection and
// SetSecureContext), the DER of its issuer (from the served chain, else the
// context's CA, else nil) and a callback:
//
//	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
//		cb(nil, stapleFor(cert)) // or cb(err, nil) to refuse the connection
//	})
//
// Eligibility is per listener: a listener is called for a connection only
// if it was registered when that connection's handshake began (at accept or
// ServeConn, before the 'connection' listeners run) and is still registered
// when the ClientHello is processed. (Node decides per socket, then calls
// every listener present at the ClientHello: one added in 'connection' is
// called there and not here.) All eligible listeners are called in order
// and share one callback; the first call decides. A non-empty response is
// stapled on this connection only; nil or empty staples nothing; an error
// destroys the connection and is reported through 'tlsClientError'.
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
//     server watches the socket while it waits, without touching its
//     deadlines, so connections without deadlines work too) and reported
//     with [ErrSocketClosed]; a later callback call is a no-op. A client
//     that sends more than 64 KiB meanwhile is destroyed with
//     [ErrClientDataOverflow]. Close and Shutdown abort pending waits.
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
// is called before resumption is decided, and the staple is read as soon as
// UnwrapSession returns, so for a connection that asked for status the
// emission waits for UnwrapSession, where the server decides resumption
// itself: it hands crypto/tls a session only when crypto/tls's own rules
// (version, cipher suite and certificate key, client certificate, extended
// master secret, age) accept it, using facts recorded in
// tls.SessionState.Extra when the session was issued, and otherwise emits
// 'OCSPRequest' for the full handshake. A session predicted to resume that
// crypto/tls refuses anyway is reported through 'error' with
// [ErrResumptionMispredicted]. The staple is set on a per-connection copy
// of the tls.Certificate; shared certificates are never modified. A
// per-connection tls.Config is made only when a hook needs one (key log,
// session store, TLS 1.2 tickets).
//
// 'keylog' uses a per-handshake KeyLogWriter, for connections whose
// handshake began while a 'keylog' listener existed. 'newSession' and
// 'resumeSession' map onto WrapSession and UnwrapSession: the ticket is a
// random 32-byte id, the listener stores the session data under it, and
// the handshake waits for done or cb; cb(nil, nil) means a full handshake.
// In TLS 1.3, Go issues one ticket before the handshake completes, so
// 'newSession' comes once, before 'secureConnection' (Node: twice, after);
// in TLS 1.2 it comes on every handshake, full or resumed. Sessions older
// than Options.SessionTimeout (Node's sessionTimeout, 300 s by default) are
// not resumed.
//
// Ticket keys take Node's 48-byte form ([Server.TicketKeys],
// [Server.SetTicketKeys], which takes a ring: the first key encrypts, all
// decrypt); crypto/tls's 32-byte key is their SHA-256.
//
// (*tls.Conn).NetConn returns the server's wrapper of the accepted
// connection, which tracks its closing for Connections and 'close'; its
// NetConn method returns the accepted connection itself.
//
// # Serving HTTP, and the end
//
// Options.HTTP is Node's https.createServer(options, handler): the
// http.Server is served on the connections the server establishes, with
// HTTP/2 (ALPN offers "h2" and "http/1.1" unless Config.NextProtos says
// otherwise). [Server.Shutdown] is Node's server.close(): it stops
// accepting at once, lets the handshakes under way finish (callbacks
// included) and be delivered, runs the http.Server's own Shutdown (idle
// keep-alive connections close at once, requests in flight finish), waits
// for the last connection, emits 'close' and returns; one call on SIGTERM
// does it all. [Server.Close] is the abrupt end. No listener of the server
// runs after Shutdown has returned, unless one blocks: a second after
// Shutdown's context has ended, a listener still running is left behind.
//
// [Server.Listener] is the manual form: http.Server.Serve(srv.Listener()),
// including HTTP/2 when the Config's NextProtos offer "h2". Established
// connections wait for it in a bounded backlog, so none is stranded
// between Listen and the first call to Listener; once it is closed, none
// waits at all.
//
// # Client certificates and crl
//
// Node's requestCert and rejectUnauthorized are Config.ClientAuth:
// tls.RequestClientCert for requestCert with rejectUnauthorized false,
// tls.RequireAndVerifyClientCert for requestCert with rejectUnauthorized.
// Node's ca is Options.CA, its crl Options.CRL (DER or PEM, verified
// against CA when set): client certificates are checked against the CRLs
// as Node checks them, per context (an AddContext context with its own CA
// verifies its names' clients), and a client that fails is refused in
// the handshake with Node's code (CERT_REVOKED, CRL_HAS_EXPIRED,
// UNABLE_TO_GET_CRL, CRL_NOT_YET_VALID), where Node says only ECONNRESET.
// [Authorized] is the socket's authorized and authorizationError
// ([RequestAuthorized] in an HTTP handler).
//
// Errors carry Node's codes ([Code]): ECONNRESET for a client gone before
// its handshake completed, ERR_SSL_HTTP_REQUEST for plain HTTP on the TLS
// port, errno names for system call errors, ERR_TLS_HANDSHAKE_TIMEOUT,
// ERR_SSL_NO_APPLICATION_PROTOCOL for a client with no ALPN protocol in
// common (refused as Node refuses it, also an http/1.1 client of an
// h2-only server), ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE, and for a
// client certificate that does not verify the reason Node gives in
// authorizationError (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …).
//
// The server emits 'error' only when an 'error' listener exists, else it
// logs to Options.Logger: a network failure never panics through the
// emitter's unhandled-'error' rule.
//
// # Metrics
//
// [Server.Stats] returns the server's counters (handshakes by outcome,
// drops, client errors by Node code and the latest ones), and
// Options.MeterProvider receives them as OpenTelemetry metrics, with the
// handshakes' durations (docs/metrics.md); package statuspage shows them
// on a page.
package tlsserver
