package tlsserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Node's requestCert/rejectUnauthorized and ca become Config.ClientAuth and
// Options.CA: the CA list is also the roots for client certificates.
func TestClientCertificatesVerifiedAgainstCA(t *testing.T) {
	p := newTSPKI(t)
	clientCA := testpki.NewCA(t, "client CA")
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.CA = []*x509.Certificate{clientCA.Cert}
		o.Config = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	})
	errs := tsClientErrors(srv)
	peers := make(chan []string, 4)
	srv.OnSecureConnection(func(c *tls.Conn) {
		var names []string
		for _, cert := range c.ConnectionState().PeerCertificates {
			names = append(names, cert.Subject.CommonName)
		}
		peers <- names
		c.Close()
	})

	// No client certificate: refused and reported.
	if c, err := tsDial(srv, tsClientConfig(p, 0)); err == nil {
		// TLS 1.3 reports the server's refusal on the first read.
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client without a certificate was accepted")
		}
		c.Close()
	}
	if err := errs.next(t); err == nil {
		t.Fatal("no tlsClientError for the missing client certificate")
	}

	// A certificate from another CA: refused.
	stranger := testpki.NewCA(t, "stranger CA").Issue(t, testpki.LeafOptions{
		CommonName: "stranger", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	cfg := tsClientConfig(p, 0)
	cfg.Certificates = []tls.Certificate{stranger.TLSCertificate(false)}
	if c, err := tsDial(srv, cfg); err == nil {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client certificate from another CA was accepted")
		}
		c.Close()
	}
	if err := errs.next(t); err == nil {
		t.Fatal("no tlsClientError for the foreign client certificate")
	}

	// A certificate from the CA given as Options.CA: accepted.
	member := clientCA.Issue(t, testpki.LeafOptions{
		CommonName: "member", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	cfg.Certificates = []tls.Certificate{member.TLSCertificate(false)}
	c := tsMustDial(t, srv, cfg)
	c.Read(make([]byte, 1)) // until the server closes
	c.Close()
	if got := <-peers; len(got) != 1 || got[0] != "member" {
		t.Errorf("server saw client certificates %v, want [member]", got)
	}
	errs.none(t)
}

// Node's minVersion and ALPNProtocols are Config.MinVersion and
// Config.NextProtos, honoured per connection.
func TestConfigVersionsAndALPN(t *testing.T) {
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) {
		o.Config = &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"h2", "http/1.1"}}
	})
	errs := tsClientErrors(srv)
	if c, err := tsDial(srv, tsClientConfig(p, tls.VersionTLS12)); err == nil {
		c.Close()
		t.Fatal("a TLS 1.2 client was accepted with MinVersion TLS 1.3")
	}
	if err := errs.next(t); err == nil {
		t.Fatal("no tlsClientError for the refused version")
	}
	cfg := tsClientConfig(p, 0)
	cfg.NextProtos = []string{"http/1.1"}
	c := tsMustDial(t, srv, cfg)
	defer c.Close()
	if st := c.ConnectionState(); st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("got %s with ALPN %q, want TLS 1.3 with http/1.1", tls.VersionName(st.Version), st.NegotiatedProtocol)
	}
}

// Issue 16: ALPN with no protocol in common is refused as Node refuses it
// (checked on Node v20: differential alpn-*): the client gets a
// no_application_protocol alert and 'tlsClientError' gets
// ErrNoApplicationProtocol (ERR_SSL_NO_APPLICATION_PROTOCOL), also for an
// http/1.1-only client of an h2-only server, which crypto/tls alone lets in
// without a protocol. A side without ALPN, or a protocol in common, is
// served.
func TestALPNNoProtocolInCommon(t *testing.T) {
	p := newTSPKI(t)
	for _, v := range versions {
		for _, tc := range []struct {
			server, client []string
			want           string // the protocol agreed; "-" for a refusal
		}{
			{[]string{"h2"}, []string{"http/1.1"}, "-"},
			{[]string{"h2", "http/1.1"}, []string{"h3"}, "-"},
			{[]string{"http/1.1"}, []string{"h2"}, "-"},
			{[]string{"h2"}, []string{"h2"}, "h2"},
			{[]string{"h2", "http/1.1"}, []string{"spdy/3", "http/1.1"}, "http/1.1"},
			{nil, []string{"x"}, ""},
			{[]string{"x"}, nil, ""},
		} {
			t.Run(fmt.Sprintf("%s/server=%q/client=%q", v.name, tc.server, tc.client), func(t *testing.T) {
				srv := tsServer(t, p, func(o *tlsserver.Options) { o.Config = &tls.Config{NextProtos: tc.server} })
				ce := tsClientErrors(srv)
				var ocsp atomic.Int32
				srv.OnOCSPRequest(func(_, _ []byte, cb tlsserver.OCSPCallback) { ocsp.Add(1); cb(nil, nil) })
				cfg := tsClientConfig(p, v.v)
				cfg.NextProtos = tc.client
				c, err := tsDial(srv, cfg)
				if tc.want != "-" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					defer c.Close()
					if got := c.ConnectionState().NegotiatedProtocol; got != tc.want {
						t.Fatalf("protocol %q, want %q", got, tc.want)
					}
					ce.none(t)
					return
				}
				if err == nil {
					c.Close()
					t.Fatalf("served with protocol %q", c.ConnectionState().NegotiatedProtocol)
				}
				if !strings.Contains(err.Error(), "no application protocol") {
					t.Errorf("client error %v, want a no_application_protocol alert", err)
				}
				serr := ce.next(t)
				if tlsserver.Code(serr) != "ERR_SSL_NO_APPLICATION_PROTOCOL" || !errors.Is(serr, tlsserver.ErrNoApplicationProtocol) {
					t.Errorf("tlsClientError %v, code %q", serr, tlsserver.Code(serr))
				}
				if ocsp.Load() != 0 {
					t.Error("'OCSPRequest' emitted for a refused client")
				}
			})
		}
	}
}
