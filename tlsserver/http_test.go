package tlsserver_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// protoHandler answers with the request's protocol.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })

// Item 2: Options.HTTP is Node's https.createServer(options, handler):
// Listen serves it with no Listener call, and ALPN offers exactly what
// net/http serves on it: HTTP/2 and HTTP/1.1 by default (Go's client and
// curl negotiate h2, and it is served), HTTP/1.1 alone when the
// http.Server turns HTTP/2 off (a client offering h2 still gets a working
// HTTP/1.1 connection), and what Config.NextProtos says when it is set.
func TestHTTPOptionALPN(t *testing.T) {
	p := newTSPKI(t)
	for _, tc := range []struct {
		name    string
		hs      func() *http.Server
		config  *tls.Config
		wantH2  bool
		wantALP string // negotiated by a client offering h2 and http/1.1
	}{
		{"default", func() *http.Server { return &http.Server{} }, nil, true, "h2"},
		{"TLSNextProto empty", func() *http.Server {
			return &http.Server{TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		}, nil, false, "http/1.1"},
		{"Protocols HTTP1 only", func() *http.Server {
			var ps http.Protocols
			ps.SetHTTP1(true)
			return &http.Server{Protocols: &ps}
		}, nil, false, "http/1.1"},
		{"Protocols HTTP1 and HTTP2", func() *http.Server {
			var ps http.Protocols
			ps.SetHTTP1(true)
			ps.SetHTTP2(true)
			return &http.Server{Protocols: &ps}
		}, nil, true, "h2"},
		{"TLSConfig without h2", func() *http.Server {
			return &http.Server{TLSConfig: &tls.Config{NextProtos: []string{"http/1.1"}}}
		}, nil, false, "http/1.1"},
		{"Config.NextProtos http/1.1", func() *http.Server { return &http.Server{} },
			&tls.Config{NextProtos: []string{"http/1.1"}}, false, "http/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := tc.hs()
			hs.Handler = protoHandler
			srv := tsServer(t, p, func(o *tlsserver.Options) { o.HTTP, o.Config = hs, tc.config })
			for _, h2 := range []bool{true, false} {
				tr := &http.Transport{TLSClientConfig: tsClientConfig(p, 0), ForceAttemptHTTP2: h2}
				if !h2 {
					tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
					tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				}
				cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				resp, err := cl.Get("https://" + srv.Addr().String())
				if err != nil {
					t.Fatalf("client offering h2=%v: %v", h2, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				tr.CloseIdleConnections()
				want, alpn := "HTTP/1.1", "http/1.1"
				if h2 {
					alpn = tc.wantALP
					if tc.wantH2 {
						want = "HTTP/2.0"
					}
				}
				if string(body) != want || resp.TLS.NegotiatedProtocol != alpn {
					t.Fatalf("client offering h2=%v: served %q over ALPN %q, want %s over %q", h2, body, resp.TLS.NegotiatedProtocol, want, alpn)
				}
			}
		})
	}
}

// Item 2 and observed item 6: curl --http2 negotiates and is served
// HTTP/2 by a server given only Options.HTTP; curl --http1.1 gets
// HTTP/1.1.
func TestHTTPOptionCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl")
	p := newTSPKI(t)
	srv := tsServer(t, p, func(o *tlsserver.Options) { o.HTTP = &http.Server{Handler: protoHandler} })
	caPath, _ := p.ca.WritePEM(t.TempDir())
	port := srv.Addr().(*net.TCPAddr).Port
	for flag, want := range map[string]string{"--http2": "HTTP/2.0 2", "--http1.1": "HTTP/1.1 1.1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, curl, "-sS", "--max-time", "20", flag, "--cacert", caPath,
			"--resolve", fmt.Sprintf("localhost:%d:127.0.0.1", port), "-w", " %{http_version}",
			fmt.Sprintf("https://localhost:%d/", port)).CombinedOutput()
		cancel()
		if err != nil || string(out) != want {
			t.Fatalf("curl %s: %q, %v; want %q", flag, out, err, want)
		}
	}
}

// With Options.HTTP, ServeConn alone (no Listen) serves HTTP too, and
// Close closes the http.Server's connections (http.Server.Close).
func TestHTTPOptionServeConnAndClose(t *testing.T) {
	p := newTSPKI(t)
	srv, err := tlsserver.New(tlsserver.Options{
		Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
		HTTP:         &http.Server{Handler: protoHandler},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	srv.OnClose(func() { close(closed) })
	a, b := net.Pipe()
	defer a.Close()
	srv.ServeConn(b)
	cfg := tsClientConfig(p, 0)
	cfg.NextProtos = []string{"http/1.1"}
	c := tls.Client(a, cfg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if body, err := keepAliveGet(c, br); body != "HTTP/1.1" {
		t.Fatalf("over ServeConn: %q, %v", body, err)
	}
	go srv.Close() // (its close_notify waits for this side to read the pipe)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the keep-alive connection survived Close")
	}
	<-closed
	if srv.Connections() != 0 {
		t.Fatal("connections left after 'close'")
	}
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Listen after Close: %v", err)
	}
}

// Close and Shutdown end Options.HTTP's serving quietly: its Serve
// returning because the server closed is no 'error', and nothing is
// emitted after 'close' (make demo's trace once ended with an 'error'
// after 'close').
func TestHTTPOptionEndsQuietly(t *testing.T) {
	p := newTSPKI(t)
	for _, end := range []string{"Close", "Shutdown"} {
		for i := range 10 {
			before := goleak.IgnoreCurrent()
			srv, err := tlsserver.New(tlsserver.Options{
				Certificates: []tls.Certificate{p.leaf.TLSCertificate(true)},
				HTTP:         &http.Server{Handler: protoHandler},
			})
			if err != nil {
				t.Fatal(err)
			}
			var rec recorder
			srv.OnError(func(err error) { rec.add("error " + err.Error()) })
			srv.OnClose(func() { rec.add("close") })
			if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			tr := &http.Transport{TLSClientConfig: tsClientConfig(p, 0), ForceAttemptHTTP2: true}
			resp, err := (&http.Client{Transport: tr}).Get("https://" + srv.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			if end == "Close" {
				srv.Close()
			} else if err := srv.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Every goroutine of the server has ended: whatever it was to
			// emit has been emitted.
			if err := goleak.Find(before); err != nil {
				t.Fatal(err)
			}
			if got := rec.get(); len(got) != 1 || got[0] != "close" {
				t.Fatalf("%s #%d: events %q, want only 'close'", end, i, got)
			}
		}
	}
}
