package tlsserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
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

// Issue 16: a client certificate that is required and missing, badly
// signed or not verifying gets Node's code (checked on Node v20:
// differential client-cert-*). Missing and badly signed are Node's
// 'tlsClientError' codes; for one that does not verify, Node's
// 'tlsClientError' says only ECONNRESET and the reason is the socket's
// authorizationError, which is the code tlsemit gives. errors.Is finds the
// sentinels, errors.As crypto/tls's and crypto/x509's errors.
func TestClientCertificateCodes(t *testing.T) {
	p := newTSPKI(t)
	clientCA := testpki.NewCA(t, "client CA")
	other := testpki.NewCA(t, "other CA")
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	issue := func(ca *testpki.CA, o testpki.LeafOptions, withChain bool) *tls.Certificate {
		if o.ExtKeyUsage == nil {
			o.ExtKeyUsage = eku
		}
		c := ca.Issue(t, o).TLSCertificate(withChain)
		return &c
	}
	now := time.Now()
	good := issue(clientCA, testpki.LeafOptions{CommonName: "good"}, false)
	badSig := *good
	badSig.PrivateKey = other.Key // not the certificate's key
	self := testpki.NewCA(t, "self-signed client")
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		code string
		is   error
		as   any
	}{
		{"not sent", &tls.Certificate{}, "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", tlsserver.ErrPeerDidNotReturnACertificate, nil},
		{"bad signature", &badSig, "ERR_SSL_BAD_SIGNATURE", tlsserver.ErrBadSignature, nil},
		{"unknown issuer", issue(other, testpki.LeafOptions{}, false), "UNABLE_TO_VERIFY_LEAF_SIGNATURE", nil, &unknown},
		{"intermediate not sent", issue(clientCA.Intermediate(t, "client intermediate"), testpki.LeafOptions{}, false), "UNABLE_TO_VERIFY_LEAF_SIGNATURE", nil, &unknown},
		{"untrusted root sent", issue(other, testpki.LeafOptions{}, true), "SELF_SIGNED_CERT_IN_CHAIN", nil, &unknown},
		{"untrusted intermediate sent", issue(other.Intermediate(t, "other intermediate"), testpki.LeafOptions{}, true), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", nil, &unknown},
		{"self-signed", &tls.Certificate{Certificate: [][]byte{self.DER}, PrivateKey: self.Key}, "DEPTH_ZERO_SELF_SIGNED_CERT", nil, &unknown},
		{"expired", issue(clientCA, testpki.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, false), "CERT_HAS_EXPIRED", nil, &invalid},
		{"not yet valid", issue(clientCA, testpki.LeafOptions{NotBefore: now.Add(24 * time.Hour)}, false), "CERT_NOT_YET_VALID", nil, &invalid},
		{"server certificate", issue(clientCA, testpki.LeafOptions{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, false), "INVALID_PURPOSE", nil, &invalid},
	} {
		for _, v := range versions {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				srv := tsServer(t, p, func(o *tlsserver.Options) {
					o.CA = []*x509.Certificate{clientCA.Cert}
					o.Config = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
				})
				ce := tsClientErrors(srv)
				if c := clientCertDial(t, srv, p, v.v, tc.cert); c != nil {
					t.Fatal("the client was served")
				}
				err := ce.next(t)
				if got := tlsserver.Code(err); got != tc.code {
					t.Errorf("Code(%v) = %q, want %q", err, got, tc.code)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
				}
				if tc.as != nil {
					var ve *tls.CertificateVerificationError
					if !errors.As(err, &ve) || !errors.As(err, tc.as) {
						t.Errorf("errors.As(%v, %T) = false", err, tc.as)
					}
				}
			})
		}
	}

	// The server's clock (Config.Time) decides between expired and not yet
	// valid; the good certificate is served at the real time.
	for _, tc := range []struct {
		skew time.Duration
		code string
	}{{0, ""}, {30 * 24 * time.Hour, "CERT_HAS_EXPIRED"}, {-30 * 24 * time.Hour, "CERT_NOT_YET_VALID"}} {
		srv := tsServer(t, p, func(o *tlsserver.Options) {
			o.CA = []*x509.Certificate{clientCA.Cert}
			o.Config = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, Time: func() time.Time { return time.Now().Add(tc.skew) }}
		})
		ce := tsClientErrors(srv)
		c := clientCertDial(t, srv, p, 0, good)
		if tc.code == "" {
			if c == nil {
				t.Fatal("the good client was refused")
			}
			ce.none(t)
			continue
		}
		if err := ce.next(t); c != nil || tlsserver.Code(err) != tc.code {
			t.Errorf("server clock %v ahead: served %v, code %q, want %q", tc.skew, c != nil, tlsserver.Code(err), tc.code)
		}
	}
}

// clientCertDial handshakes with srv presenting cert and returns the
// connection, or nil when the server refused it (a TLS 1.3 client learns
// that on its first read).
func clientCertDial(t *testing.T, srv *tlsserver.Server, p *tsPKI, v uint16, cert *tls.Certificate) *tls.Conn {
	t.Helper()
	cfg := tsClientConfig(p, v)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	id := srv.OnSecureConnection(func(sc *tls.Conn) { sc.Write([]byte{1}); sc.Close() })
	defer srv.Off(tlsserver.EventSecureConnection, id)
	c, err := tsDial(srv, cfg)
	if err != nil {
		return nil
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := c.Read(make([]byte, 1)); n != 1 { // TLS 1.2 may read the byte and the close_notify at once
		c.Close()
		return nil
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Issue 16 (for issue 18's codes): an error with a Code() string method
// keeps its code through Code, wrapped or not, and so in 'tlsClientError'
// when a VerifyConnection hook refuses a client with it. A *Error in the
// chain before it wins; an empty Code() is no code.
func TestCodeFromCodeMethod(t *testing.T) {
	revoked := codedError{code: "CERT_REVOKED"}
	for _, tc := range []struct {
		err  error
		code string
	}{
		{revoked, "CERT_REVOKED"},
		{fmt.Errorf("checking: %w", revoked), "CERT_REVOKED"},
		{errors.Join(errors.New("first"), revoked), "CERT_REVOKED"},
		{&tlsserver.Error{Code: "ERR_OUTER", Msg: "outer", Err: revoked}, "ERR_OUTER"},
		{codedError{}, ""},
		{fmt.Errorf("%w: %w", codedError{}, syscall.EPIPE), "EPIPE"},
	} {
		if got := tlsserver.Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}

	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.Config = &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return revoked }}
	})
	ce := tsClientErrors(srv)
	if c := clientCertDial(t, srv, p, 0, &tls.Certificate{}); c != nil {
		t.Fatal("the client was served")
	}
	if err := ce.next(t); tlsserver.Code(err) != "CERT_REVOKED" || !errors.Is(err, revoked) {
		t.Fatalf("tlsClientError %v, code %q", err, tlsserver.Code(err))
	}
}

// codedError is another package's error with a code, as crlfetch's.
type codedError struct{ code string }

func (e codedError) Error() string { return "coded error " + e.code }
func (e codedError) Code() string  { return e.code }
