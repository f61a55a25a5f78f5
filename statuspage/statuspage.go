// Package statuspage serves a live status page for a tlsserver.Server, its
// ocspfetch and crlfetch Fetchers and its fleet: for each certificate, its
// staple's status, age and next refresh, and the responder's last error
// (or, for a certificate without a responder, what its CRL says); for
// each CRL, its issuer, number, times, entries, size and last error; for
// the server, its connections, handshakes per second and recent client
// errors; for the fleet, whether Redis answers and what it said last,
// where ticket-key rotation stands, and what the session store and staple
// sharing achieve. It is an http.Handler the application mounts where it
// wants, as net/http/pprof's:
//
//	mux.Handle("/debug/tlsemit/", statuspage.Handler(srv, fetcher))
//
// or, with CRLs and a fleet, statuspage.New(statuspage.Options{Server:
// srv, Fetchers: []*ocspfetch.Fetcher{fetcher}, CRLFetchers:
// []*crlfetch.Fetcher{crls}, Fleet: fl}).
//
// Nothing is mounted by default. The page names certificates, responders
// and client addresses: mount it on an internal or authenticated listener,
// never on the public one.
//
// Browsers get HTML (html/template, no script, reloading itself every 10
// seconds), with times relative ("in 3 h 12 m") and the absolute time on
// hover. A request with "Accept: application/json" gets the same data as
// JSON: "generated_at", "server" (connections, handshakes {full, resumed,
// failed}, handshakes_per_second over rate_window_seconds, drops,
// client_errors by Node code, recent_client_errors), "fleet"
// (redis_reachable, last_error, last_error_at, ticket_key_slot,
// last_rotation, ticket_key_local, sessions {hits, misses,
// write_failures}, staples_adopted), "fetchers", each with its
// "certificates" (names, subject, serial, responder_url, source: ocsp,
// crl or none, crl_url, status: good, revoked, unknown or none, stapled,
// this_update, next_update, serve_until, age_seconds, next_refresh,
// last_error, failures, must_staple; for source crl the times and age are
// the CRL's), and "crl_fetchers", each with its "crls" (source, explicit,
// issuer, state: held, expired or none, number as a decimal string,
// this_update, next_update, entries, size, origin, since, last_fetch,
// next_fetch, last_error, failures). Times are RFC 3339; absent ones are
// null.
//
// However many clients ask, the page takes little of the server: it is
// rendered at most once a second, one rendering at a time, and requests in
// between get the last one (gzip-compressed for clients that accept it);
// and responses are paced, one starting only after a rest twenty times as
// long as the last took to write, and at most 8 MiB of pages a second. So
// rendering and sending a page of many certificates each take at most
// about a twentieth of a core, and the server's handshakes keep their pace
// while the page is hammered.
//
// The data comes from Server.Stats, ocspfetch's Fetcher.Certificates,
// crlfetch's Fetcher.CRLs and Fleet.Stats, which an application can read
// itself.
package statuspage

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Options say what a page shows; each part is optional.
type Options struct {
	// Server is the server whose connections, handshakes and client
	// errors are shown.
	Server *tlsserver.Server
	// Fetchers get a table of certificates each, in order: each
	// certificate's staple, or, for one that names no OCSP responder, what
	// its CRL says.
	Fetchers []*ocspfetch.Fetcher
	// CRLFetchers get a table of CRLs each, in order (crlfetch's
	// Fetcher.CRLs): the client certificates' CRLs of a VerifyConnection,
	// or those an ocspfetch Fetcher reads through its Options.CRL.
	CRLFetchers []*crlfetch.Fetcher
	// Fleet is the process's fleet (Redis, ticket keys, sessions,
	// shared staples).
	Fleet *fleet.Fleet
}

// Handler returns the status page of srv and fetchers: New with Server
// and Fetchers. srv may be nil (a page of Fetchers only). It answers GET
// and HEAD.
func Handler(srv *tlsserver.Server, fetchers ...*ocspfetch.Fetcher) http.Handler {
	return New(Options{Server: srv, Fetchers: fetchers})
}

// New returns the status page of what opts name. It answers GET and HEAD.
func New(opts Options) http.Handler {
	h := &handler{opts: opts}
	if srv := opts.Server; srv != nil {
		st := srv.Stats()
		h.samples = []sample{{st.At, handshakes(st)}}
	}
	return h
}

type handler struct {
	opts Options

	mu      sync.Mutex
	samples []sample // handshake totals, oldest first: the rate's window

	render sync.Mutex // held by the one rendering in progress
	cached atomic.Pointer[rendering]

	pace      sync.Mutex // orders the starts of responses
	nextStart time.Time  // no response starts before, under pace
	lastWrite atomic.Int64
}

// sample is the server's handshake total at a time.
type sample struct {
	at time.Time
	n  int64
}

// rateWindow is the time over which handshakes per second are averaged:
// since the oldest sample within it (the page's previous views), or
// since the Handler was made.
const rateWindow = time.Minute

// minInterval is the least time between two renderings of a page.
const minInterval = time.Second

// share is how much of a core a page may take, rendering and sending each,
// as the reciprocal: one twentieth.
const share = 20

// maxRest bounds the pause between two responses, so that a response that
// took long to write (a slow client) does not hold the others for long.
const maxRest = 100 * time.Millisecond

// maxRate bounds the bytes of pages sent per second, whatever they cost
// to write: a write to a socket returns once the kernel has the bytes, and
// the copying it and its reader do next is not in its time. 8 MiB/s is
// some 80 pages of 10,000 certificates a second, far more than people and
// dashboards read.
const maxRate = 8 << 20

//go:embed *.html
var pageFiles embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"rel": relative,
	"abs": absolute,
	"age": func(s *float64) string {
		if s == nil {
			return "–"
		}
		return span(time.Duration(*s * float64(time.Second)))
	},
	"title": func(s string) string {
		if s == "none" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"join": strings.Join,
	"size": size,
}).ParseFS(pageFiles, "*.html"))

// rendering is a page's data and the forms made of it so far, shared by
// the requests until it is stale.
type rendering struct {
	page  *page
	at    time.Time
	until time.Time // stale from then

	mu    sync.Mutex
	forms map[form][]byte
}

// form is one encoding of the page.
type form struct {
	json, gzip bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	fm := form{json: strings.Contains(r.Header.Get("Accept"), "application/json"), gzip: acceptsGzip(r)}
	body, err := h.current().encoded(fm)
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Add("Vary", "Accept, Accept-Encoding")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if fm.json {
		hd.Set("Content-Type", "application/json")
	} else {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	}
	if fm.gzip {
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodGet {
		h.send(w, body)
	}
}

// send writes body once the rest that followed the previous response is
// over: responses take at most a share of a core however many clients
// ask, and wait, parked, for their turn.
func (h *handler) send(w http.ResponseWriter, body []byte) {
	h.pace.Lock()
	if wait := time.Until(h.nextStart); wait > 0 {
		t := time.NewTimer(wait)
		<-t.C
	}
	h.nextStart = time.Now().Add(rest(time.Duration(h.lastWrite.Load()), len(body)))
	h.pace.Unlock()
	start := time.Now()
	w.Write(body)
	h.lastWrite.Store(int64(time.Since(start)))
}

// rest is the pause after a response of size bytes, when the previous one
// took lastWrite to write: its share of a core, and of maxRate.
func rest(lastWrite time.Duration, size int) time.Duration {
	return max(min((share-1)*lastWrite, maxRest), time.Duration(size)*time.Second/maxRate)
}

// current returns the page to serve: the last rendering while it is fresh,
// else a new one, made by one request while the others wait for it.
func (h *handler) current() *rendering {
	if c := h.cached.Load(); c != nil && time.Now().Before(c.until) {
		return c
	}
	h.render.Lock()
	defer h.render.Unlock()
	if c := h.cached.Load(); c != nil && time.Now().Before(c.until) {
		return c // made while this request waited
	}
	start := time.Now()
	c := &rendering{page: h.page(), at: start, forms: map[form][]byte{}}
	c.encoded(form{}) // the HTML, most asked for, while others wait
	// Rendering takes at most a share of the time, however many
	// certificates there are.
	c.until = time.Now().Add(max(minInterval, share*time.Since(start)))
	h.cached.Store(c)
	return c
}

// encoded returns the page in form fm, encoding it on first use.
func (c *rendering) encoded(fm form) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.encodedLocked(fm)
}

func (c *rendering) encodedLocked(fm form) ([]byte, error) {
	if b, ok := c.forms[fm]; ok {
		return b, nil
	}
	var body bytes.Buffer
	switch {
	case fm.gzip:
		plain, err := c.encodedLocked(form{json: fm.json})
		if err != nil {
			return nil, err
		}
		zw, _ := gzip.NewWriterLevel(&body, gzip.BestSpeed)
		zw.Write(plain)
		zw.Close()
	case fm.json:
		enc := json.NewEncoder(&body)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c.page); err != nil {
			return nil, err
		}
	default:
		if err := pageTmpl.Execute(&body, c.page); err != nil {
			return nil, err
		}
	}
	c.forms[fm] = body.Bytes()
	return body.Bytes(), nil
}

// acceptsGzip reports whether the client takes a gzip-encoded body.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// rate returns handshakes per second over the window ending at st, and
// the window.
func (h *handler) rate(st tlsserver.Stats) (float64, time.Duration) {
	n := handshakes(st)
	h.mu.Lock()
	defer h.mu.Unlock()
	if last := h.samples[len(h.samples)-1]; st.At.Sub(last.at) >= time.Second {
		h.samples = append(h.samples, sample{st.At, n}) // at most one a second: bounded
	}
	for len(h.samples) > 2 && st.At.Sub(h.samples[1].at) >= rateWindow {
		h.samples = h.samples[1:]
	}
	base := h.samples[0]
	d := st.At.Sub(base.at)
	if d <= 0 {
		return 0, 0
	}
	return float64(n-base.n) / d.Seconds(), d
}

func handshakes(st tlsserver.Stats) int64 {
	return st.FullHandshakes + st.ResumedHandshakes + st.FailedHandshakes
}

// relative says when t is from now: "in 3 h 12 m", "4 m 10 s ago", "now".
func relative(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d >= time.Second:
		return "in " + span(d)
	case d <= -time.Second:
		return span(-d) + " ago"
	}
	return "now"
}

// absolute is t for the title attribute, in UTC and local time.
func absolute(t time.Time) string {
	return t.UTC().Format(time.RFC3339) + " (" + t.Local().Format("2006-01-02 15:04:05 MST") + ")"
}

// span writes d in its two largest units: "2 d 3 h", "3 h 12 m",
// "4 m 10 s", "42 s".
func span(d time.Duration) string {
	d = d.Round(time.Second)
	units := []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	var parts []string
	for _, u := range units {
		if n := d / u.d; n > 0 || (len(parts) == 0 && u.name == "s") {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+" "+u.name)
			d -= n * u.d
		} else if len(parts) > 0 {
			break
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(parts, " ")
}

// size writes n bytes in the largest unit that keeps it at or above one:
// "812 B", "33.5 MB".
func size(n int) string {
	const unit = 1000
	if n < unit {
		return strconv.Itoa(n) + " B"
	}
	v, i := float64(n), 0
	for v >= unit-0.05 && i < 3 { // 999,960 bytes is 1.0 MB, not 1000.0 kB
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + [...]string{"", "kB", "MB", "GB"}[i]
}
