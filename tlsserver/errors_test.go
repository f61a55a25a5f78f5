package tlsserver_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/tlsserver"
)

// Item 7: what a client does wrong before its handshake completes gets
// Node's code (the same codes Node's own tls.Server reports:
// TestDifferentialAgainstNode/client-error-codes), and errors.Is still
// matches the sentinel and the underlying error.
func TestClientErrorCodes(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HandshakeTimeout = 300 * time.Millisecond })
	ce := tsClientErrors(srv)
	half := "\x16\x03\x01\x00\xc8\x01\x00"
	for _, tc := range []struct {
		name, send string
		reset      bool
		code       string
		is         []error
	}{
		{"nothing", "", false, "ECONNRESET", []error{tlsserver.ErrSocketClosed, io.EOF}},
		{"half a record", half, false, "ECONNRESET", []error{tlsserver.ErrSocketClosed, io.ErrUnexpectedEOF}},
		{"reset", half, true, "ECONNRESET", []error{tlsserver.ErrSocketClosed, syscall.ECONNRESET}},
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, "ERR_SSL_HTTP_REQUEST", []error{tlsserver.ErrHTTPRequest}},
		{"proxy request", "CONNECT a:443 HTTP/1.1\r\n\r\n", false, "ERR_SSL_HTTPS_PROXY_REQUEST", []error{tlsserver.ErrHTTPSProxyRequest}},
		{"not TLS", "hello\r\n", false, "ERR_SSL_WRONG_VERSION_NUMBER", []error{tlsserver.ErrWrongVersionNumber}},
		{"silent", "\x16", false, "ERR_TLS_HANDSHAKE_TIMEOUT", []error{tlsserver.ErrHandshakeTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte(tc.send))
			if tc.code != "ERR_TLS_HANDSHAKE_TIMEOUT" {
				// Whether the server reads what was sent before the FIN or
				// RST or not, the code is the same.
				if tc.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
			}
			err = ce.next(t)
			if got := tlsserver.Code(err); got != tc.code {
				t.Errorf("Code(%v) = %q, want %q", err, got, tc.code)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
		})
	}
	var rh tls.RecordHeaderError
	c, _ := net.Dial("tcp", srv.Addr().String())
	c.Write([]byte("HEAD / HTTP/1.0\r\n\r\n"))
	if err := ce.next(t); !errors.As(err, &rh) || string(rh.RecordHeader[:]) != "HEAD " {
		t.Errorf("crypto/tls's error is not kept: %v", err)
	}
	c.Close()
}

// Item 7: an error a callback passes keeps its errno name in
// 'tlsClientError' (Node's err.code), and errors.Is finds the errno.
func TestCallbackErrorKeepsErrnoCode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	p := newTSPKI(t)
	srv := tsServer(t, p, nil)
	ce := tsClientErrors(srv)
	srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) {
		// The responder is down: the fetch is refused.
		_, err := net.DialTimeout("tcp", closedPort, time.Second)
		cb(err, nil)
	})
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		t.Fatal("handshake succeeded")
	}
	err = ce.next(t)
	if tlsserver.Code(err) != "ECONNREFUSED" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("tlsClientError %v, code %q", err, tlsserver.Code(err))
	}
}

// Code's mapping of errors that are not tlsemit's own.
func TestCodeOfOtherErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, "EPIPE"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "ECONNRESET"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, "ETIMEDOUT"},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "ETIMEDOUT"},
		{&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, "ENOTFOUND"},
		{tlsserver.ErrMultipleCallback, "ERR_MULTIPLE_CALLBACK"},
	} {
		if got := tlsserver.Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}
}
