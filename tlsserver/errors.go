package tlsserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Error is an error with a Node.js error code. The package's sentinel
// errors are *Error values; an *Error matches a sentinel under errors.Is when
// their codes are equal, so a wrapped or more detailed report still matches:
//
//	errors.Is(err, tlsserver.ErrHandshakeTimeout)
type Error struct {
	// Code is Node's error code, such as "ERR_TLS_HANDSHAKE_TIMEOUT".
	Code string
	// Msg describes the failure.
	Msg string
	// Err is the underlying cause, or nil.
	Err error
}

// Error returns the message, with the code and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("tlsserver: %s (%s): %v", e.Msg, e.Code, e.Err)
	}
	return fmt.Sprintf("tlsserver: %s (%s)", e.Msg, e.Code)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Code returns the Node error code of err, as Node's err.code: the code of
// the first *Error in err's chain; else, from the first error in the chain
// with a Code() string method, what that returns, when not empty (so the
// errors of other packages, such as a hook's for VerifyConnection, keep
// their codes); else the errno name of a system call error ("ECONNRESET",
// "EPIPE", "ETIMEDOUT", "ECONNREFUSED", …), so an error a listener passes
// to a callback keeps the code Node would give it; else "ETIMEDOUT" for a
// deadline, "ENOTFOUND" for an unknown host; else "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var coded interface{ Code() string }
	if errors.As(err, &coded) {
		if code := coded.Code(); code != "" {
			return code
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name, ok := errnoNames[errno]; ok {
			return name
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "ETIMEDOUT"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return "ENOTFOUND"
	}
	return ""
}

// errnoNames are the system call errors a network server meets, by the
// names Node gives them.
var errnoNames = map[syscall.Errno]string{
	syscall.ECONNRESET:    "ECONNRESET",
	syscall.EPIPE:         "EPIPE",
	syscall.ETIMEDOUT:     "ETIMEDOUT",
	syscall.ECONNREFUSED:  "ECONNREFUSED",
	syscall.ECONNABORTED:  "ECONNABORTED",
	syscall.EHOSTUNREACH:  "EHOSTUNREACH",
	syscall.ENETUNREACH:   "ENETUNREACH",
	syscall.EADDRINUSE:    "EADDRINUSE",
	syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.ENOTCONN:      "ENOTCONN",
	syscall.EMFILE:        "EMFILE",
}

// The sentinel errors. Compare with errors.Is; the errors reported by the
// server wrap them with details.
var (
	// ErrMultipleCallback: an 'OCSPRequest' (or 'resumeSession') callback
	// was called a second time. The connection is destroyed.
	ErrMultipleCallback = &Error{Code: "ERR_MULTIPLE_CALLBACK", Msg: "callback was already called"}
	// ErrHandshakeTimeout: the handshake did not complete within
	// Options.HandshakeTimeout. The connection is destroyed.
	ErrHandshakeTimeout = &Error{Code: "ERR_TLS_HANDSHAKE_TIMEOUT", Msg: "TLS handshake timeout"}
	// ErrSocketClosed: the client went away before the handshake completed:
	// it closed the connection (cleanly, after half a record, or with a
	// reset) or the connection broke. Its code is Node's for the same
	// event, ECONNRESET; the cause, when there is one (a syscall.Errno such
	// as ECONNRESET or EPIPE, io.EOF), is wrapped.
	ErrSocketClosed = &Error{Code: "ECONNRESET", Msg: "client network socket disconnected before secure TLS connection was established"}
	// ErrHTTPRequest: the client spoke plain HTTP to the TLS port (its first
	// bytes were a GET, POST, HEAD or PUT request line), OpenSSL's and so
	// Node's ERR_SSL_HTTP_REQUEST. The wrapped cause is crypto/tls's
	// tls.RecordHeaderError.
	ErrHTTPRequest = &Error{Code: "ERR_SSL_HTTP_REQUEST", Msg: "plain HTTP request on the TLS port"}
	// ErrHTTPSProxyRequest: the client sent an HTTP CONNECT (a proxy
	// request) to the TLS port; Node's ERR_SSL_HTTPS_PROXY_REQUEST.
	ErrHTTPSProxyRequest = &Error{Code: "ERR_SSL_HTTPS_PROXY_REQUEST", Msg: "HTTPS proxy request on the TLS port"}
	// ErrWrongVersionNumber: the client's first bytes are not a TLS
	// record; Node's ERR_SSL_WRONG_VERSION_NUMBER.
	ErrWrongVersionNumber = &Error{Code: "ERR_SSL_WRONG_VERSION_NUMBER", Msg: "first record is not TLS"}
	// ErrListenerPanic: a listener (or SNICallback) panicked while serving a
	// connection. The connection is destroyed; the error wraps a
	// *PanicError holding the value. Node would crash the process.
	ErrListenerPanic = &Error{Code: "ERR_TLSEMIT_LISTENER_PANIC", Msg: "listener panicked"}
	// ErrClientDataOverflow: while its handshake waited for a listener's
	// callback, the client sent more than a legitimate client sends before
	// the server's reply (64 KiB). The connection is destroyed.
	ErrClientDataOverflow = &Error{Code: "ERR_TLSEMIT_CLIENT_DATA_OVERFLOW", Msg: "client sent too much data while its handshake waited"}
	// ErrNotAccepted: an established connection waited for
	// Listener().Accept longer than the bound, found the backlog full, or
	// was waiting when the Listener or the server closed; or a connection
	// came while the Listener was closed, or while the server shut down
	// with nobody to accept it (see Server.Listener and Server.Shutdown).
	// It is closed and reported as DropInfo.Err in a 'drop' event.
	ErrNotAccepted = &Error{Code: "ERR_TLSEMIT_NOT_ACCEPTED", Msg: "connection not accepted"}
	// ErrInvalidArgType: an event was emitted with arguments its typed
	// listeners cannot take (a forged emission such as
	// srv.Emit("secureConnection", 42)); Node's ERR_INVALID_ARG_TYPE. Those
	// listeners are skipped and the error is reported through 'error'.
	ErrInvalidArgType = &Error{Code: "ERR_INVALID_ARG_TYPE", Msg: "event emitted with arguments of the wrong type"}
	// ErrResumptionMispredicted: a TLS 1.2 handshake that the server
	// expected crypto/tls to resume was a full one, so its 'OCSPRequest'
	// was not emitted and nothing was stapled. It means crypto/tls changed
	// a resumption rule the server does not know; it is reported through
	// 'error' and the connection is left as it is.
	ErrResumptionMispredicted = &Error{Code: "ERR_TLSEMIT_RESUMPTION_MISPREDICTED", Msg: "a session predicted to resume was refused: 'OCSPRequest' was skipped"}
	// ErrClosed: the server was closed: returned by Listen and Serve
	// after Close or Shutdown, and reported for handshakes that Close, or
	// Shutdown giving up when its context ended, cut. Every package's
	// closed error has this name (ocspfetch, crlfetch, fleet).
	ErrClosed = &Error{Code: "ERR_SERVER_NOT_RUNNING", Msg: "server is closed"}
	// ErrServerClosed is ErrClosed's former name.
	//
	// Deprecated: use ErrClosed.
	ErrServerClosed = ErrClosed
	// ErrTicketKeys: SetTicketKeys was given no key or a key of other than
	// 48 bytes.
	ErrTicketKeys = &Error{Code: "ERR_INVALID_ARG_VALUE", Msg: "ticket keys must be 48 bytes each"}
	// ErrNoApplicationProtocol: client and server both offered ALPN
	// protocols (Config.NextProtos) and share none. The client gets a
	// no_application_protocol alert, as from Node, also when the server
	// offers "h2" and the client only "http/1.1" (which crypto/tls alone
	// would let in without a protocol). The wrapped cause is crypto/tls's
	// error.
	ErrNoApplicationProtocol = &Error{Code: "ERR_SSL_NO_APPLICATION_PROTOCOL", Msg: "no application protocol in common with the client"}
	// ErrPeerDidNotReturnACertificate: Config.ClientAuth requires a client
	// certificate and the client sent none.
	ErrPeerDidNotReturnACertificate = &Error{Code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", Msg: "client did not send the required certificate"}
	// ErrBadSignature: the client's CertificateVerify signature does not
	// verify with its certificate's key (the client does not hold the
	// certificate's private key).
	ErrBadSignature = &Error{Code: "ERR_SSL_BAD_SIGNATURE", Msg: "client certificate signature does not verify"}
)

// PanicError carries the value a listener panicked with. When the value is
// an error, Unwrap returns it, so errors.Is sees through the panic.
type PanicError struct {
	// Event is the event whose listener panicked ("SNICallback" for the
	// callback).
	Event string
	// Value is what the listener panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error describes the panic.
func (p *PanicError) Error() string { return fmt.Sprintf("%q listener panic: %v", p.Event, p.Value) }

// Unwrap returns Value when it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

func withCause(sentinel *Error, cause error) *Error {
	return &Error{Code: sentinel.Code, Msg: sentinel.Msg, Err: cause}
}

func withDetail(sentinel *Error, detail string) *Error {
	return &Error{Code: sentinel.Code, Msg: sentinel.Msg + ": " + detail}
}

// classify gives a failed handshake's error its Node code where one
// applies: a client gone (ECONNRESET, as Node reports it), a first record
// that is not TLS (plain HTTP, an HTTPS proxy request, anything else), no
// ALPN protocol in common, a client certificate missing, badly signed or
// not verifying. t is the server's time, for the last, and v the
// context that verified it (nil: none).
func classify(err error, t time.Time, v *clientVerifier) error {
	if code := verifyCode(err, t); code != "" {
		if crlErr := v.crlAfterVerify(err, code, t); crlErr != nil {
			return crlErr
		}
		return &Error{Code: code, Msg: "client certificate did not verify", Err: err}
	}
	for _, m := range tlsMessages {
		if strings.HasPrefix(err.Error(), m.prefix) {
			return withCause(m.sentinel, err)
		}
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil { // crypto/tls sets Conn for a non-TLS first record only
		h := rh.RecordHeader[:]
		switch {
		case hasPrefix(h, "GET "), hasPrefix(h, "POST "), hasPrefix(h, "HEAD "), hasPrefix(h, "PUT "):
			return withCause(ErrHTTPRequest, err)
		case hasPrefix(h, "CONNE"):
			return withCause(ErrHTTPSProxyRequest, err)
		}
		return withCause(ErrWrongVersionNumber, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return withCause(ErrSocketClosed, err)
	}
	return err
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// tlsMessages are crypto/tls's handshake errors that have a Node code but
// no type of their own, by the start of their message. Tests with real
// clients pin each (TestALPNNoProtocolInCommon, TestClientCertificateCodes):
// a reworded message fails them.
var tlsMessages = []struct {
	prefix   string
	sentinel *Error
}{
	{"tls: client requested unsupported application protocols", ErrNoApplicationProtocol},
	{"tls: client didn't provide a certificate", ErrPeerDidNotReturnACertificate},
	{"tls: invalid signature by the client certificate", ErrBadSignature},
}

// verifyCode returns the code Node gives a client certificate that does
// not verify (its socket's authorizationError, OpenSSL's name for the
// verification error), or "" when err is no such failure or OpenSSL's name
// for it is not meaningful (Node's own is then UNSPECIFIED). t is the time
// the certificate was checked at.
func verifyCode(err error, t time.Time) string {
	var ve *tls.CertificateVerificationError
	if !errors.As(err, &ve) || len(ve.UnverifiedCertificates) == 0 {
		return ""
	}
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(ve.Err, &unknown):
		return unknownIssuerCode(ve.UnverifiedCertificates)
	case !errors.As(ve.Err, &invalid):
		return ""
	case invalid.Reason == x509.Expired && invalid.Cert != nil && t.Before(invalid.Cert.NotBefore):
		return "CERT_NOT_YET_VALID"
	case invalid.Reason == x509.Expired:
		return "CERT_HAS_EXPIRED"
	case invalid.Reason == x509.IncompatibleUsage:
		return "INVALID_PURPOSE"
	}
	return ""
}

// unknownIssuerCode is OpenSSL's name for a chain that reaches no trusted
// root. Like OpenSSL it follows the certificates the client sent from the
// leaf, issuer by issuer: a self-signed one ends the path (the leaf itself:
// DEPTH_ZERO_SELF_SIGNED_CERT, else SELF_SIGNED_CERT_IN_CHAIN); a missing
// issuer ends it too (the leaf's: UNABLE_TO_VERIFY_LEAF_SIGNATURE, else
// UNABLE_TO_GET_ISSUER_CERT_LOCALLY).
func unknownIssuerCode(certs []*x509.Certificate) string {
	cur := certs[0]
	for depth := 0; depth <= len(certs); depth++ {
		if issued(cur, cur) {
			if depth == 0 {
				return "DEPTH_ZERO_SELF_SIGNED_CERT"
			}
			return "SELF_SIGNED_CERT_IN_CHAIN"
		}
		var next *x509.Certificate
		for _, c := range certs[1:] {
			if c != cur && issued(c, cur) {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		cur = next
	}
	if cur == certs[0] {
		return "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
	}
	return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
}
