package statuspage_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/ocsptest"
	"github.com/tlsemit/tlsemit/internal/redistest"
	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/statuspage"
	"github.com/tlsemit/tlsemit/tlsserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var updateScreenshot = flag.Bool("update-screenshot", false, "also write the screenshot to docs/statuspage.png")

// screenshotPath is where TestStatusPageInBrowser keeps its screenshot,
// a stable path outside the test's temporary directories:
// $TLSEMIT_ARTIFACTS/statuspage.png, by default in the system's temporary
// directory.
func screenshotPath() string {
	dir := os.Getenv("TLSEMIT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tlsemit-artifacts")
	}
	return filepath.Join(dir, "statuspage.png")
}

// scene is a running server, Fetcher and fleet in a known state, against
// the real `openssl ocsp` responder and a real redis-server: a Good
// certificate (Must-Staple), a revoked one, one whose responder is down,
// and one without a responder whose CRL (`openssl ca -gencrl`, on a CRL
// host) lists it; the crlfetch Fetcher that reads that CRL also has a
// Source whose host is down; one client spoke plain HTTP to the TLS port;
// one resumed through the session store; then Redis went away, and a
// session could not be written.
type scene struct {
	srv                *tlsserver.Server
	f                  *ocspfetch.Fetcher
	crls               *crlfetch.Fetcher
	fl                 *fleet.Fleet
	good, revoked, out *testpki.Leaf
	crlOnly            *testpki.Leaf
	crlURL, downURL    string
	url                string // the page
}

func newScene(t *testing.T) *scene {
	ca := testpki.NewCA(t, "status page CA")
	r := ocsptest.Start(t, ca, ocsptest.Options{NMin: 60})
	// The outage: a responder that does not answer (nothing listens on
	// its port, inside the responder's network namespace too).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/"
	l.Close()
	leaf := func(host, responder string, must bool) *testpki.Leaf {
		l := ca.Issue(t, testpki.LeafOptions{DNSNames: []string{host}, OCSPServer: []string{responder}, MustStaple: must})
		r.Add(l)
		return l
	}
	sc := &scene{
		good:    leaf("www.example.test", r.URL, true),
		revoked: leaf("revoked.example.test", r.URL, false),
		out:     leaf("outage.example.test", down, false),
	}
	r.Revoke(sc.revoked)

	// A certificate as Let's Encrypt's are since 2025: no responder, a
	// CRL distribution point; its CRL lists it.
	host := crltest.NewServer(t)
	sc.crlURL, sc.downURL = host.URL+"/ca.crl", down+"other.crl"
	sc.crlOnly = ca.Issue(t, testpki.LeafOptions{DNSNames: []string{"crl-only.example.test"}, CRLDistributionPoints: []string{sc.crlURL}})
	ossl := crltest.NewOpenSSLCA(t, ca, false)
	ossl.Revoke(sc.crlOnly)
	host.Set("/ca.crl", ossl.GenCRL(time.Time{}, time.Time{}))
	crls, err := crlfetch.New(crlfetch.Options{LeafOnly: true,
		Sources: []crlfetch.Source{{URL: sc.downURL, Issuer: testpki.NewCA(t, "another CA").Cert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { crls.Close() })
	sc.crls = crls

	rs := redistest.Start(t)
	fl, err := fleet.New(fleet.Options{Redis: rs.Client(t), Secret: []byte("the status page's 32-byte secret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	f, err := ocspfetch.New(ocspfetch.Options{HTTPClient: r.Client, Store: fl.Store(), CRL: crls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{sc.good.TLSCertificate(true)}, HandshakeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*testpki.Leaf{sc.revoked, sc.out, sc.crlOnly} {
		if err := srv.AddContext(l.Cert.DNSNames[0], tlsserver.SecureContext{Certificates: []tls.Certificate{l.TLSCertificate(true)}}); err != nil {
			t.Fatal(err)
		}
	}
	srv.OnOCSPRequest(f.OCSPRequest)
	srv.OnSecureConnection(func(c *tls.Conn) { c.Close() })
	if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sc.srv, sc.f, sc.fl = srv, f, fl
	if _, err := fl.TicketKeys(t.Context(), srv); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Sessions(srv); err != nil {
		t.Fatal(err)
	}

	sessions := tls.NewLRUClientSessionCache(4)
	handshake := func(host string) []byte {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", srv.Addr().String(),
			&tls.Config{ServerName: host, RootCAs: ca.Pool(), ClientSessionCache: sessions})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	if handshake("www.example.test") == nil || handshake("revoked.example.test") != nil {
		t.Fatal("good not stapled, or revoked stapled")
	}
	if handshake("outage.example.test") != nil {
		t.Fatal("stapled with the responder down")
	}
	if handshake("crl-only.example.test") != nil {
		t.Fatal("stapled a certificate without a responder")
	}
	testenv.WaitFor(t, func() bool {
		for _, c := range f.Certificates() {
			if c.Serial == sc.crlOnly.Serial() && c.CRL != nil {
				return true
			}
		}
		return false
	})
	testenv.WaitFor(t, func() bool {
		for _, c := range crls.CRLs() {
			if c.Source == sc.downURL && c.LastError != nil {
				return true
			}
		}
		return false
	})
	plain, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	plain.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	plain.Read(make([]byte, 1))
	plain.Close()
	testenv.WaitFor(t, func() bool { st := srv.Stats(); return st.FailedHandshakes == 1 && st.Connections == 0 })

	// A resumption through the session store (the client reads, to take
	// in its TLS 1.3 ticket), then Redis goes away and the next session
	// cannot be written.
	resume := func(cache tls.ClientSessionCache) bool {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", srv.Addr().String(),
			&tls.Config{ServerName: "www.example.test", RootCAs: ca.Pool(), ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.ReadAll(c)
		return c.ConnectionState().DidResume
	}
	cache := tls.NewLRUClientSessionCache(1)
	resume(cache)
	if !resume(cache) {
		t.Fatal("no resumption through the session store")
	}
	rs.Stop()
	resume(tls.NewLRUClientSessionCache(1)) // a client that takes tickets: a session to write
	if st := fl.Stats(); st.RedisReachable || st.SessionHits != 1 || st.SessionWriteFailures != 1 {
		t.Fatalf("fleet: %+v", st)
	}

	// The application's one line, on its own internal listener.
	mux := http.NewServeMux()
	mux.Handle("/debug/tlsemit/", statuspage.New(statuspage.Options{Server: srv, Fetchers: []*ocspfetch.Fetcher{f},
		CRLFetchers: []*crlfetch.Fetcher{crls}, Fleet: fl}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	sc.url = hs.URL + "/debug/tlsemit/"
	return sc
}

// chromium runs headless Chromium with the flags that work as root on a
// closed network, and returns its standard output.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := testenv.RequireTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

var (
	rowRE    = regexp.MustCompile(`(?s)<tr class="cert [a-z]+" data-serial="([0-9A-F]+)" data-status="([a-z]+)" data-source="([a-z]+)">(.*?)</tr>`)
	crlRowRE = regexp.MustCompile(`(?s)<tr class="crl [a-z]+" data-source="([^"]+)" data-state="([a-z]+)">(.*?)</tr>`)
)

// TestStatusPageInBrowser loads the page in headless Chromium and reads
// the rendered rows as a person would: each certificate with its
// status, the revoked one shown as revoked, the responder outage as the
// last error, the certificate without a responder as revoked from its
// CRL; the CRL table with the CRL held (issuer, number, entries, size)
// and the one whose host is down (its last error); the server's client
// errors by code. It keeps a screenshot (see screenshotPath) and checks
// the JSON form against the same state.
func TestStatusPageInBrowser(t *testing.T) {
	sc := newScene(t)
	dom := string(chromium(t, "--dump-dom", sc.url))

	rows := map[string][3]string{} // serial → status, source, row HTML
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		rows[m[1]] = [3]string{m[2], m[3], m[4]}
	}
	lastErrRE := regexp.MustCompile(`(?s)<td class="error last-error">(.*?)</td>`)
	for _, c := range []struct {
		leaf                 *testpki.Leaf
		status, source, text string
		lastError            string
	}{
		{sc.good, "good", "ocsp", ">Good<", ""},
		{sc.revoked, "revoked", "ocsp", ">Revoked<", "certificate revoked"},
		{sc.out, "none", "ocsp", ">none<", "responder unreachable"},
		{sc.crlOnly, "revoked", "crl", ">Revoked<", "certificate revoked: listed in its CRL"},
	} {
		row, ok := rows[c.leaf.Serial()]
		name := c.leaf.Cert.DNSNames[0]
		if !ok {
			t.Errorf("no row for %s (serial %s) in the rendered page:\n%s", name, c.leaf.Serial(), dom)
			continue
		}
		if row[0] != c.status || row[1] != c.source || !strings.Contains(row[2], c.text) || !strings.Contains(row[2], name) {
			t.Errorf("%s: status %q from %q, want %q from %q shown as %q:\n%s", name, row[0], row[1], c.status, c.source, c.text, row[2])
		}
		lastErr := lastErrRE.FindStringSubmatch(row[2])
		if lastErr == nil || (c.lastError == "") != (strings.TrimSpace(lastErr[1]) == "") || !strings.Contains(lastErr[1], c.lastError) {
			t.Errorf("%s: last error %q, want %q", name, lastErr, c.lastError)
		}
	}
	if len(rows) != 4 {
		t.Errorf("%d certificate rows, want 4", len(rows))
	}
	if row := rows[sc.crlOnly.Serial()][2]; !strings.Contains(row, "CRL <code>"+sc.crlURL+"</code>") || !strings.Contains(row, "nothing to staple") {
		t.Errorf("the CRL-only row does not say where its revocation comes from:\n%s", row)
	}

	// The CRL table.
	crlRows := map[string][2]string{} // source → state, row HTML
	for _, m := range crlRowRE.FindAllStringSubmatch(dom, -1) {
		crlRows[m[1]] = [2]string{m[2], m[3]}
	}
	if len(crlRows) != 2 {
		t.Errorf("%d CRL rows, want 2:\n%s", len(crlRows), dom)
	}
	held := crlRows[sc.crlURL]
	for _, want := range []string{">Held<", "CN=status page CA", `<td class="num number">1</td>`, `<td class="num entries">1</td>`,
		` B</td>`, "from the network", ">in 23 h"} {
		if held[0] != "held" || !strings.Contains(held[1], want) {
			t.Errorf("held CRL row (%s) lacks %q:\n%s", held[0], want, held[1])
		}
	}
	if m := lastErrRE.FindStringSubmatch(held[1]); m == nil || strings.TrimSpace(m[1]) != "" {
		t.Errorf("held CRL row has a last error: %q", m)
	}
	down := crlRows[sc.downURL]
	if m := lastErrRE.FindStringSubmatch(down[1]); down[0] != "none" || !strings.Contains(down[1], ">None<") && !strings.Contains(down[1], ">none<") ||
		!strings.Contains(down[1], "(a Source)") || m == nil || !strings.Contains(m[1], "host unreachable") {
		t.Errorf("CRL row of a host that is down (%s):\n%s", down[0], down[1])
	}

	good := rows[sc.good.Serial()][2]
	for _, want := range []string{"<b>yes</b>", `>in 5`} { // Must-Staple; NextUpdate about an hour ahead (-nmin 60)
		if !strings.Contains(good, want) {
			t.Errorf("good row lacks %q:\n%s", want, good)
		}
	}
	if !regexp.MustCompile(`<time datetime="[^"]+" title="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(`).MatchString(good) {
		t.Errorf("no absolute time on hover in the good row:\n%s", good)
	}
	if !strings.Contains(dom, `data-code="ERR_SSL_HTTP_REQUEST"`) || !strings.Contains(dom, "handshakes/s") {
		t.Errorf("server section lacks the client error or the rate:\n%s", dom)
	}
	// The fleet, as an operator reads it during the outage.
	fst := sc.fl.Stats()
	for id, want := range map[string]string{
		"redis":                  `<b class="down">unreachable</b> Redis`,
		"ticket-key":             fmt.Sprintf("<b>%d</b> ticket-key slot", fst.TicketKeySlot),
		"session-hits":           "<b>1</b> sessions resumed",
		"session-write-failures": "<b>1</b> session writes failed",
		"staples-adopted":        "<b>0</b> staples adopted",
	} {
		m := regexp.MustCompile(`(?s)<span class="stat" id="` + id + `">(.*?)</span>\s*\n`).FindStringSubmatch(dom)
		if m == nil || !strings.Contains(m[1], want) {
			t.Errorf("fleet %s: %q, want %q", id, m, want)
		}
	}
	if m := regexp.MustCompile(`(?s)<p id="redis-last-error">(.*?)</p>`).FindStringSubmatch(dom); m == nil ||
		!strings.Contains(m[1], "Last Redis error") || !regexp.MustCompile(`<span class="error">(sessions|staples|ticket keys), [A-Z]+: .+</span>`).MatchString(m[1]) {
		t.Errorf("the fleet's last Redis error is not shown: %q", m)
	}
	if !strings.Contains(dom, `<span class="stat" id="rotation"><b><time`) {
		t.Errorf("no last rotation shown:\n%s", dom)
	}

	// What a person sees: a screenshot, kept.
	shot := filepath.Join(t.TempDir(), "page.png")
	chromium(t, "--screenshot="+shot, "--window-size=1500,1550", sc.url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 1500 {
		t.Fatalf("screenshot: %v, %v", err, img)
	}
	keep := []string{screenshotPath()}
	if *updateScreenshot {
		keep = append(keep, filepath.Join("..", "docs", "statuspage.png"))
	}
	for _, p := range keep {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	checkJSON(t, sc)
}

// checkJSON reads the page as JSON and checks it against the same state
// as the browser saw, and against Server.Stats and Fetcher.Certificates.
func checkJSON(t *testing.T, sc *scene) {
	req, _ := http.NewRequest(http.MethodGet, sc.url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var p struct {
		Fleet *struct {
			RedisReachable bool       `json:"redis_reachable"`
			LastError      string     `json:"last_error"`
			LastErrorAt    *time.Time `json:"last_error_at"`
			TicketKeySlot  int64      `json:"ticket_key_slot"`
			LastRotation   *time.Time `json:"last_rotation"`
			TicketKeyLocal bool       `json:"ticket_key_local"`
			Sessions       struct {
				Hits, Misses  int64
				WriteFailures int64 `json:"write_failures"`
			} `json:"sessions"`
			StaplesAdopted int64 `json:"staples_adopted"`
		} `json:"fleet"`
		Server struct {
			Connections int `json:"connections"`
			Handshakes  struct {
				Full, Resumed, Failed int64
			} `json:"handshakes"`
			ClientErrors       map[string]int64 `json:"client_errors"`
			RecentClientErrors []struct {
				Code string `json:"code"`
			} `json:"recent_client_errors"`
		} `json:"server"`
		CRLFetchers []struct {
			CRLs []struct {
				Source     string     `json:"source"`
				Explicit   bool       `json:"explicit"`
				Issuer     string     `json:"issuer"`
				State      string     `json:"state"`
				Number     *string    `json:"number"`
				ThisUpdate *time.Time `json:"this_update"`
				NextUpdate *time.Time `json:"next_update"`
				Entries    int        `json:"entries"`
				Size       int        `json:"size"`
				Origin     string     `json:"origin"`
				NextFetch  *time.Time `json:"next_fetch"`
				LastError  string     `json:"last_error"`
				Failures   int        `json:"failures"`
			} `json:"crls"`
		} `json:"crl_fetchers"`
		Fetchers []struct {
			Certificates []struct {
				Names       []string   `json:"names"`
				Serial      string     `json:"serial"`
				Source      string     `json:"source"`
				CRLURL      string     `json:"crl_url"`
				Status      string     `json:"status"`
				Stapled     bool       `json:"stapled"`
				NextUpdate  *time.Time `json:"next_update"`
				Age         *float64   `json:"age_seconds"`
				NextRefresh *time.Time `json:"next_refresh"`
				LastError   string     `json:"last_error"`
				MustStaple  bool       `json:"must_staple"`
			} `json:"certificates"`
		} `json:"fetchers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	fst := sc.fl.Stats()
	// (The last error moves on: the fleet probes the stopped Redis every
	// second.)
	if fl := p.Fleet; fl == nil || fl.RedisReachable || fl.LastError == "" || fl.LastErrorAt == nil || fst.LastError == nil ||
		fl.TicketKeySlot != fst.TicketKeySlot || fl.LastRotation == nil ||
		fl.TicketKeyLocal != fst.TicketKeyLocal || fl.Sessions.Hits != fst.SessionHits || fl.Sessions.Misses != fst.SessionMisses ||
		fl.Sessions.WriteFailures != fst.SessionWriteFailures || fl.StaplesAdopted != fst.StaplesAdopted {
		t.Errorf("fleet: JSON %+v, Stats %+v", p.Fleet, fst)
	}
	st := sc.srv.Stats()
	if p.Server.Handshakes.Full != st.FullHandshakes || p.Server.Handshakes.Failed != 1 || p.Server.ClientErrors["ERR_SSL_HTTP_REQUEST"] != 1 ||
		len(p.Server.RecentClientErrors) != 1 || p.Server.RecentClientErrors[0].Code != "ERR_SSL_HTTP_REQUEST" {
		t.Errorf("server: %+v, Stats %+v", p.Server, st)
	}
	if len(p.Fetchers) != 1 || len(p.Fetchers[0].Certificates) != 4 {
		t.Fatalf("fetchers: %+v", p.Fetchers)
	}
	want := sc.f.Certificates()
	for i, c := range p.Fetchers[0].Certificates {
		w := want[i]
		status := "none"
		if w.Staple != nil {
			status = map[int]string{0: "good", 1: "revoked", 2: "unknown"}[w.Staple.Status]
		}
		if w.CRL != nil {
			status = map[int]string{0: "good", 1: "revoked"}[w.CRL.Status]
		}
		if c.Serial != w.Serial || c.Names[0] != w.Names[0] || c.Status != status || c.Source != w.Source || c.Stapled != w.Stapled || c.MustStaple != w.MustStaple ||
			(w.LastError == nil) != (c.LastError == "") {
			t.Errorf("certificate %d: JSON %+v, Certificates %+v", i, c, w)
		}
	}
	if len(p.CRLFetchers) != 1 || len(p.CRLFetchers[0].CRLs) != 2 {
		t.Fatalf("crl_fetchers: %+v", p.CRLFetchers)
	}
	wantCRLs := sc.crls.CRLs()
	for i, c := range p.CRLFetchers[0].CRLs {
		w := wantCRLs[i]
		if c.Source != w.Source || c.Explicit != w.Explicit || c.Issuer != w.Issuer || c.Entries != w.Entries || c.Size != w.Size ||
			c.Failures != w.Failures || (w.LastError == nil) != (c.LastError == "") || (w.Number == nil) != (c.Number == nil) ||
			w.Number != nil && *c.Number != w.Number.String() {
			t.Errorf("CRL %d: JSON %+v, CRLs %+v", i, c, w)
		}
	}
	bySerial := map[string]int{}
	for i, c := range p.Fetchers[0].Certificates {
		bySerial[c.Serial] = i
	}
	g := p.Fetchers[0].Certificates[bySerial[sc.good.Serial()]]
	if g.Status != "good" || !g.Stapled || g.NextUpdate == nil || g.Age == nil || *g.Age < 0 || g.NextRefresh == nil || !g.MustStaple {
		t.Errorf("good: %+v", g)
	}
	if o := p.Fetchers[0].Certificates[bySerial[sc.out.Serial()]]; o.Status != "none" || !strings.Contains(o.LastError, "unreachable") || o.Age != nil {
		t.Errorf("outage: %+v", o)
	}
	if r := p.Fetchers[0].Certificates[bySerial[sc.revoked.Serial()]]; r.Status != "revoked" || r.Stapled || r.Source != "ocsp" {
		t.Errorf("revoked: %+v", r)
	}
	if r := p.Fetchers[0].Certificates[bySerial[sc.crlOnly.Serial()]]; r.Status != "revoked" || r.Stapled || r.Source != "crl" ||
		r.CRLURL != sc.crlURL || r.NextUpdate == nil || r.Age == nil || !strings.Contains(r.LastError, "revoked") {
		t.Errorf("revoked from its CRL: %+v", r)
	}
	bySource := map[string]int{}
	for i, c := range p.CRLFetchers[0].CRLs {
		bySource[c.Source] = i
	}
	if h := p.CRLFetchers[0].CRLs[bySource[sc.crlURL]]; h.State != "held" || h.Number == nil || *h.Number != "1" || h.Entries != 1 ||
		h.Size < 100 || h.ThisUpdate == nil || h.NextUpdate == nil || h.Origin != "network" || h.LastError != "" || !strings.Contains(h.Issuer, "status page CA") {
		t.Errorf("held CRL: %+v", h)
	}
	if d := p.CRLFetchers[0].CRLs[bySource[sc.downURL]]; d.State != "none" || !d.Explicit || d.Number != nil || !strings.Contains(d.LastError, "unreachable") ||
		d.Failures < 1 || d.NextFetch == nil {
		t.Errorf("CRL whose host is down: %+v", d)
	}
}

// TestHandlerMethodsAndHeaders: only GET and HEAD; the page is never
// cached and takes no script.
func TestHandlerMethodsAndHeaders(t *testing.T) {
	h := statuspage.Handler(nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/tlsemit/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/tlsemit/", nil))
	hd := rec.Header()
	if rec.Code != 200 || hd.Get("Cache-Control") != "no-store" || !strings.Contains(hd.Get("Content-Security-Policy"), "default-src 'none'") ||
		strings.Contains(rec.Body.String(), "<script") {
		t.Errorf("%d %v\n%s", rec.Code, hd, rec.Body.String())
	}
}
