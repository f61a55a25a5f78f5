// Package statuspage serves a live status page for a tlsserver.Server and
// its ocspfetch Fetchers: for each certificate, its staple's status, age
// and next refresh, and the responder's last error; for the server, its
// connections, handshakes per second and recent client errors. It is an
// http.Handler the application mounts where it wants, as net/http/pprof's:
//
//	mux.Handle("/debug/tlsemit/", statuspage.Handler(srv, fetcher))
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
// client_errors by Node code, recent_client_errors) and "fetchers", each
// with its "certificates" (names, subject, serial, responder_url, status:
// good, revoked, unknown or none, stapled, this_update, next_update,
// serve_until, age_seconds, next_refresh, last_error, failures,
// must_staple). Times are RFC 3339; absent ones are null.
//
// The data comes from Server.Stats and Fetcher.Certificates, which an
// application can read itself.
package statuspage

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Handler returns the status page of srv and fetchers. srv may be nil (a
// page of Fetchers only); each Fetcher gets a table of its own, in order.
// It answers GET and HEAD.
func Handler(srv *tlsserver.Server, fetchers ...*ocspfetch.Fetcher) http.Handler {
	h := &handler{srv: srv, fetchers: fetchers}
	if srv != nil {
		st := srv.Stats()
		h.samples = []sample{{st.At, handshakes(st)}}
	}
	return h
}

type handler struct {
	srv      *tlsserver.Server
	fetchers []*ocspfetch.Fetcher

	mu      sync.Mutex
	samples []sample // handshake totals, oldest first: the rate's window
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

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
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
}).Parse(pageHTML))

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := h.page()
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Add("Vary", "Accept")
	var body bytes.Buffer
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		hd.Set("Content-Type", "application/json")
		enc := json.NewEncoder(&body)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	} else {
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		if err := pageTmpl.Execute(&body, p); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Write(body.Bytes())
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
