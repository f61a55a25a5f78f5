package tlsserver_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/events"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Item 9: every one of the eleven events has a typed registration, and
// each gets its event, with its arguments, from a real server.
func TestTypedListenersForEveryEvent(t *testing.T) {
	p := newTSPKI(t)
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates:     []tls.Certificate{p.leaf.TLSCertificate(true)},
		HandshakeTimeout: 5 * time.Second,
		MaxConnections:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	seen := func(ev string, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			t.Errorf("'%s' with a wrong argument", ev)
		}
		got[ev]++
	}
	var sessions sync.Map
	held := make(chan *tls.Conn, 4)
	srv.OnListening(func() { seen("listening", true) })
	srv.OnClose(func() { seen("close", true) })
	srv.OnError(func(err error) { seen("error", err != nil) })
	srv.OnDrop(func(d tlsserver.DropInfo) { seen("drop", d.RemoteAddr != nil && d.Err == nil) })
	srv.OnConnection(func(c net.Conn) { seen("connection", c != nil) })
	srv.OnOCSPRequest(func(cert, issuer []byte, cb tlsserver.OCSPCallback) {
		seen("OCSPRequest", bytes.Equal(cert, p.leaf.DER) && bytes.Equal(issuer, p.ca.DER))
		cb(nil, nil)
	})
	srv.OnKeylog(func(line []byte, c net.Conn) { seen("keylog", len(line) > 0 && c != nil) })
	srv.OnNewSession(func(id, data []byte, done func()) {
		seen("newSession", len(id) > 0 && len(data) > 0)
		sessions.Store(string(id), data)
		done()
	})
	srv.OnResumeSession(func(id []byte, cb func(error, []byte)) {
		data, _ := sessions.Load(string(id))
		seen("resumeSession", data != nil)
		b, _ := data.([]byte)
		cb(nil, b)
	})
	srv.OnSecureConnection(func(c *tls.Conn) { seen("secureConnection", c != nil); held <- c })
	srv.OnTLSClientError(func(err error, c net.Conn) { seen("tlsClientError", err != nil && c != nil) })
	if err := srv.Listen(t.Context(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cfg := tsClientConfig(p, tls.VersionTLS12)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	c1 := tsMustDial(t, srv, cfg)
	s1 := <-held
	if _, err := tsDial(srv, tsClientConfig(p, 0)); err == nil { // over MaxConnections: 'drop'
		t.Fatal("a connection over MaxConnections was served")
	}
	c1.Close()
	s1.Close()
	waitFor(t, func() bool { return srv.Connections() == 0 })
	if c := tsMustDial(t, srv, cfg); !c.ConnectionState().DidResume { // 'resumeSession'
		t.Fatal("did not resume")
	}
	(<-held).Close()
	waitFor(t, func() bool { return srv.Connections() == 0 })
	junk, _ := net.Dial("tcp", srv.Addr().String())
	junk.Write([]byte("junk junk junk junk"))
	junk.Close()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return got["tlsClientError"] == 1 })
	srv.Emit(tlsserver.EventError, errors.New("an application's own 'error'"))
	srv.Close()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return got["close"] == 1 })
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for ev := range got {
		names = append(names, ev)
	}
	sort.Strings(names)
	if len(names) != 11 {
		t.Fatalf("events seen through typed listeners: %v", names)
	}
}

// Item 9: a forged or wrong-typed emission never panics inside tlsemit;
// the typed listener is skipped and the emission is reported through
// 'error' with ErrInvalidArgType ('error' itself: through the logger).
func TestForgedEmissionsReported(t *testing.T) {
	var logged bytes.Buffer // the server has no connection: it logs on this goroutine only
	srv, err := tlsserver.New(tlsserver.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	called := make(chan string, 16)
	srv.OnOCSPRequest(func(_, _ []byte, _ tlsserver.OCSPCallback) { called <- "OCSPRequest" })
	srv.OnSecureConnection(func(*tls.Conn) { called <- "secureConnection" })
	srv.OnTLSClientError(func(error, net.Conn) { called <- "tlsClientError" })
	srv.OnConnection(func(net.Conn) { called <- "connection" })
	srv.OnKeylog(func([]byte, net.Conn) { called <- "keylog" })
	srv.OnNewSession(func(_, _ []byte, _ func()) { called <- "newSession" })
	srv.OnResumeSession(func([]byte, func(error, []byte)) { called <- "resumeSession" })
	srv.OnDrop(func(tlsserver.DropInfo) { called <- "drop" })
	srv.OnError(func(err error) {
		if !errors.Is(err, tlsserver.ErrInvalidArgType) {
			called <- "error"
		}
	})
	errs := make(chan error, 16)
	srv.On(tlsserver.EventError, func(args ...any) {
		if err, ok := args[0].(error); ok {
			errs <- err
		}
	})
	var nilConn *tls.Conn
	var nilCallback tlsserver.OCSPCallback
	for _, tc := range []struct {
		event string
		args  []any
	}{
		{tlsserver.EventSecureConnection, []any{42}},
		{tlsserver.EventSecureConnection, nil},
		{tlsserver.EventSecureConnection, []any{nilConn}},
		{tlsserver.EventOCSPRequest, []any{[]byte("cert"), nil}},
		{tlsserver.EventOCSPRequest, []any{[]byte("cert"), nil, nilCallback}},
		{tlsserver.EventOCSPRequest, []any{"cert", nil, func(error, []byte) {}}},
		{tlsserver.EventTLSClientError, []any{"not an error", nil}},
		{tlsserver.EventConnection, []any{struct{}{}}},
		{tlsserver.EventKeylog, []any{[]byte("line")}},
		{tlsserver.EventNewSession, []any{[]byte("id"), []byte("data"), func(int) {}}},
		{tlsserver.EventResumeSession, []any{[]byte("id")}},
		{tlsserver.EventDrop, []any{"info"}},
	} {
		t.Run(tc.event, func(t *testing.T) {
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("Emit(%q, %v) panicked: %v", tc.event, tc.args, v)
					}
				}()
				srv.Emit(tc.event, tc.args...)
			}()
			select {
			case ev := <-called:
				t.Fatalf("the typed '%s' listener was called", ev)
			default:
			}
			select {
			case err := <-errs:
				if !errors.Is(err, tlsserver.ErrInvalidArgType) || tlsserver.Code(err) != "ERR_INVALID_ARG_TYPE" ||
					!strings.Contains(err.Error(), tc.event) {
					t.Fatalf("'error' %v", err)
				}
			default:
				t.Fatal("not reported through 'error'")
			}
		})
	}
	// A forged 'error' goes to the logger: reporting it through 'error'
	// would loop.
	srv.Emit(tlsserver.EventError, 42)
	if !strings.Contains(logged.String(), "ERR_INVALID_ARG_TYPE") {
		t.Fatalf("forged 'error' not logged: %q", logged.String())
	}
}

// The max-listener warning of a server goes to Options.Logger, the one
// place the application told tlsserver to write; without a Logger it goes
// where the events package sends it (nowhere, unless the application set
// a process-wide handler).
func TestMaxListenersWarningToLogger(t *testing.T) {
	var logged bytes.Buffer // the warning comes on the goroutine that adds the listener
	srv, err := tlsserver.New(tlsserver.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for range 11 {
		srv.OnSecureConnection(func(*tls.Conn) {})
	}
	if !strings.Contains(logged.String(), "MaxListenersExceededWarning") || !strings.Contains(logged.String(), "secureConnection") {
		t.Fatalf("the 11th listener's warning did not reach the Logger:\n%s", logged.String())
	}
	quiet, err := tlsserver.New(tlsserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	var got []string
	prev := events.SetWarningHandler(func(w *events.MaxListenersExceededWarning) { got = append(got, w.Event) })
	defer events.SetWarningHandler(prev)
	for range 11 {
		quiet.OnSecureConnection(func(*tls.Conn) {})
	}
	if len(got) != 1 || got[0] != tlsserver.EventSecureConnection {
		t.Fatalf("without a Logger the warning should reach the process-wide handler once: %v", got)
	}
}
