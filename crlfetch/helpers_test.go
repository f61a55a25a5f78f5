package crlfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testclock"
	"github.com/tlsemit/tlsemit/internal/testevents"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newClock is an Options.Now that moves only when told.
func newClock() *testclock.Clock { return testclock.New() }

// recorder collects events; tests wait on it for what they expect.
type recorder struct {
	*testevents.Recorder[Event, EventKind]
}

func newRecorder() *recorder {
	return &recorder{testevents.New(func(e Event) EventKind { return e.Kind })}
}

func is(kind EventKind) func(Event) bool { return func(e Event) bool { return e.Kind == kind } }

func about(kind EventKind, source string) func(Event) bool {
	return func(e Event) bool { return e.Kind == kind && e.Source == source }
}

// count returns how many events of kind there are.
func (r *recorder) count(kind EventKind) int { return r.Count(is(kind)) }

// last returns the last event of kind.
func (r *recorder) last(kind EventKind) (Event, bool) { return r.Last(is(kind)) }

// wait waits until there are n events of kind and returns the last.
func (r *recorder) wait(t testing.TB, kind EventKind, n int) Event {
	t.Helper()
	return r.Wait(t, n, kind.String(), is(kind))
}

// lastFrom returns the last event of kind about source.
func (r *recorder) lastFrom(kind EventKind, source string) (Event, bool) {
	return r.Last(about(kind, source))
}

// waitFrom is wait for events about source.
func (r *recorder) waitFrom(t testing.TB, kind EventKind, source string, n int) Event {
	t.Helper()
	return r.Wait(t, n, kind.String()+" about "+source, about(kind, source))
}

func (r *recorder) kinds() []EventKind { return r.Kinds() }

// newFetcher is New with events recorded, closed when the test ends.
func newFetcher(t testing.TB, o Options) (*Fetcher, *recorder) {
	t.Helper()
	rec := newRecorder()
	if o.OnEvent == nil {
		o.OnEvent = rec.OnEvent
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rec
}

// pokeAll wakes every source's loop to look at the clock again.
func (f *Fetcher) pokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sources {
		s.poke()
	}
}

// status returns the CRLStatus of source.
func status(t testing.TB, f *Fetcher, source string) CRLStatus {
	t.Helper()
	for _, s := range f.CRLs() {
		if s.Source == source {
			return s
		}
	}
	t.Fatalf("no source %s in %+v", source, f.CRLs())
	return CRLStatus{}
}

// mtls is a PKI for client certificates: root → inter → leaves, the
// leaves naming the intermediate's CRL at host/inter.crl, the
// intermediate naming the root's at host/root.crl.
type mtls struct {
	host        *crltest.Server
	root, inter *testpki.CA
	good, bad   *testpki.Leaf
	server      tls.Certificate
}

func newMTLS(t testing.TB) *mtls {
	t.Helper()
	host := crltest.NewServer(t)
	root := testpki.NewCA(t, "crlfetch root")
	inter := root.IntermediateWith(t, "crlfetch inter", testpki.CAOptions{CRLDistributionPoints: []string{host.URL + "/root.crl"}})
	leaf := func(name string) *testpki.Leaf {
		return inter.Issue(t, testpki.LeafOptions{CommonName: name, DNSNames: []string{name},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CRLDistributionPoints: []string{host.URL + "/inter.crl"}})
	}
	m := &mtls{host: host, root: root, inter: inter, good: leaf("good client"), bad: leaf("revoked client"),
		server: root.Issue(t, testpki.LeafOptions{}).TLSCertificate(true)}
	return m
}

// publish serves the intermediate's CRL (revoking bad) and the root's.
func (m *mtls) publish(t testing.TB, o testpki.CRLOptions) {
	t.Helper()
	io := o
	io.Revoked = append(io.Revoked, m.bad.Cert.SerialNumber)
	m.host.Set("/inter.crl", m.inter.CRL(t, io))
	m.host.Set("/root.crl", m.root.CRL(t, testpki.CRLOptions{ThisUpdate: o.ThisUpdate, NextUpdate: o.NextUpdate, Number: o.Number}))
}

// chain is leaf's verified chain.
func (m *mtls) chain(leaf *testpki.Leaf) [][]*x509.Certificate {
	return [][]*x509.Certificate{{leaf.Cert, m.inter.Cert, m.root.Cert}}
}

// check runs f.Check on leaf's chain.
func (m *mtls) check(f *Fetcher, leaf *testpki.Leaf) error {
	return f.Check(context.Background(), m.chain(leaf))
}

// serverConfig is a crypto/tls server requiring client certificates of
// the PKI, checked by f.
func (m *mtls) serverConfig(f *Fetcher) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{m.server}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: m.root.Pool(), VerifyConnection: f.VerifyConnection}
}

// handshake runs one TLS handshake of leaf (with its chain) against cfg
// over a pipe and returns the server's error.
func (m *mtls) handshake(t testing.TB, cfg *tls.Config, leaf *testpki.Leaf, version uint16) error {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	errc := make(chan error, 1)
	go func() {
		srv := tls.Server(s, cfg)
		err := srv.Handshake()
		s.Close()
		errc <- err
	}()
	cli := tls.Client(c, &tls.Config{RootCAs: m.root.Pool(), ServerName: "localhost", MinVersion: version, MaxVersion: version,
		Certificates: []tls.Certificate{leaf.TLSCertificate(true)}})
	cli.Handshake()
	if version == tls.VersionTLS13 {
		cli.Read(make([]byte, 1)) // the server's verdict on the client certificate comes after
	}
	c.Close()
	return <-errc
}

// serialBytes is a serial's DER INTEGER content octets.
func serialBytes(n *big.Int) []byte {
	b, _ := asn1.Marshal(n)
	return b[2:]
}
