package statuspage

import (
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/crlfetch"
	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// page is what the page shows, as HTML and as JSON alike. Each part has a
// view, made here from its package's public read API, and a template of its
// own (server.html, fleet.html, staples.html, crls.html) that page.html
// places.
type page struct {
	Now         time.Time        `json:"generated_at"`
	Server      *serverView      `json:"server,omitempty"`
	Fleet       *fleetView       `json:"fleet,omitempty"`
	Fetchers    []fetcherView    `json:"fetchers"`
	CRLFetchers []crlFetcherView `json:"crl_fetchers"`
}

type serverView struct {
	Connections         int               `json:"connections"`
	Handshakes          handshakeCounts   `json:"handshakes"`
	HandshakesPerSecond float64           `json:"handshakes_per_second"`
	RateWindow          float64           `json:"rate_window_seconds"`
	Drops               int64             `json:"drops"`
	ClientErrors        map[string]int64  `json:"client_errors"`
	RecentClientErrors  []clientErrorView `json:"recent_client_errors"`
}

type handshakeCounts struct {
	Full    int64 `json:"full"`
	Resumed int64 `json:"resumed"`
	Failed  int64 `json:"failed"`
}

type clientErrorView struct {
	At     time.Time `json:"at"`
	Code   string    `json:"code"`
	Error  string    `json:"error"`
	Remote string    `json:"remote"`
}

type fetcherView struct {
	Certificates []certView `json:"certificates"`
}

type certView struct {
	Names        []string   `json:"names"`
	Subject      string     `json:"subject"`
	Serial       string     `json:"serial"`
	ResponderURL string     `json:"responder_url"`
	Source       string     `json:"source"`            // ocsp, crl, none
	CRLURL       string     `json:"crl_url,omitempty"` // the CRL read, for source crl
	Status       string     `json:"status"`            // good, revoked, unknown, none
	Stapled      bool       `json:"stapled"`
	ThisUpdate   *time.Time `json:"this_update"`
	NextUpdate   *time.Time `json:"next_update"`
	ServeUntil   *time.Time `json:"serve_until"`
	Age          *float64   `json:"age_seconds"`
	NextRefresh  *time.Time `json:"next_refresh"`
	LastError    string     `json:"last_error,omitempty"`
	Failures     int        `json:"failures"`
	MustStaple   bool       `json:"must_staple"`
}

func (h *handler) page() *page {
	p := &page{Now: time.Now(), Fetchers: []fetcherView{}}
	if h.opts.Server != nil {
		p.Server = h.server(h.opts.Server.Stats())
	}
	if h.opts.Fleet != nil {
		p.Fleet = fleetStats(h.opts.Fleet.Stats())
	}
	for _, f := range h.opts.Fetchers {
		fv := fetcherView{Certificates: []certView{}}
		for _, c := range f.Certificates() {
			fv.Certificates = append(fv.Certificates, cert(c, p.Now))
		}
		p.Fetchers = append(p.Fetchers, fv)
	}
	p.CRLFetchers = []crlFetcherView{}
	for _, f := range h.opts.CRLFetchers {
		cv := crlFetcherView{CRLs: []crlView{}}
		for _, c := range f.CRLs() {
			cv.CRLs = append(cv.CRLs, crlStatus(c))
		}
		p.CRLFetchers = append(p.CRLFetchers, cv)
	}
	return p
}

func (h *handler) server(st tlsserver.Stats) *serverView {
	v := &serverView{
		Connections:  st.Connections,
		Handshakes:   handshakeCounts{st.FullHandshakes, st.ResumedHandshakes, st.FailedHandshakes},
		Drops:        st.Drops,
		ClientErrors: st.ClientErrors,
	}
	rate, window := h.rate(st)
	v.HandshakesPerSecond, v.RateWindow = rate, window.Seconds()
	for _, e := range st.RecentClientErrors {
		ev := clientErrorView{At: e.At, Code: e.Code}
		if e.Err != nil {
			ev.Error = e.Err.Error()
		}
		if e.RemoteAddr != nil {
			ev.Remote = e.RemoteAddr.String()
		}
		v.RecentClientErrors = append(v.RecentClientErrors, ev)
	}
	return v
}

var statusNames = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}

func cert(c ocspfetch.CertificateStatus, now time.Time) certView {
	v := certView{
		Names: c.Names, Subject: c.Subject, Serial: c.Serial, ResponderURL: c.ResponderURL,
		Source: c.Source, Status: "none", Stapled: c.Stapled, Failures: c.Failures, MustStaple: c.MustStaple,
	}
	if v.Names == nil {
		v.Names = []string{}
	}
	if v.Source == "" {
		v.Source = "none"
	}
	if s := c.Staple; s != nil {
		v.Status = statusNames[s.Status]
		v.ThisUpdate, v.NextUpdate, v.ServeUntil = timePtr(s.ThisUpdate), timePtr(s.NextUpdate), timePtr(s.ServeUntil)
		age := now.Sub(s.ThisUpdate).Seconds()
		v.Age = &age
	}
	if a := c.CRL; a != nil {
		v.Status, v.CRLURL = statusNames[a.Status], a.URL
		v.ThisUpdate, v.NextUpdate = timePtr(a.ThisUpdate), timePtr(a.NextUpdate)
		if !a.ThisUpdate.IsZero() {
			age := now.Sub(a.ThisUpdate).Seconds()
			v.Age = &age
		}
	}
	v.NextRefresh = timePtr(c.NextRefresh)
	if c.LastError != nil {
		v.LastError = c.LastError.Error()
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

type fleetView struct {
	RedisReachable bool       `json:"redis_reachable"`
	LastError      string     `json:"last_error,omitempty"`
	LastErrorAt    *time.Time `json:"last_error_at"`
	TicketKeySlot  int64      `json:"ticket_key_slot"`
	LastRotation   *time.Time `json:"last_rotation"`
	TicketKeyLocal bool       `json:"ticket_key_local"`
	Sessions       struct {
		Hits          int64 `json:"hits"`
		Misses        int64 `json:"misses"`
		WriteFailures int64 `json:"write_failures"`
	} `json:"sessions"`
	StaplesAdopted int64 `json:"staples_adopted"`
}

func fleetStats(st fleet.Stats) *fleetView {
	v := &fleetView{
		RedisReachable: st.RedisReachable, LastErrorAt: timePtr(st.LastErrorAt),
		TicketKeySlot: st.TicketKeySlot, LastRotation: timePtr(st.LastRotation), TicketKeyLocal: st.TicketKeyLocal,
		StaplesAdopted: st.StaplesAdopted,
	}
	if st.LastError != nil {
		v.LastError = st.LastError.Error()
	}
	v.Sessions.Hits, v.Sessions.Misses, v.Sessions.WriteFailures = st.SessionHits, st.SessionMisses, st.SessionWriteFailures
	return v
}

type crlFetcherView struct {
	CRLs []crlView `json:"crls"`
}

// crlView is one CRL source of a crlfetch Fetcher.
type crlView struct {
	Source     string     `json:"source"` // the URL or file
	Explicit   bool       `json:"explicit"`
	Issuer     string     `json:"issuer"`
	State      string     `json:"state"`  // held, expired, none
	Number     *string    `json:"number"` // decimal: CRL numbers run to 20 octets
	ThisUpdate *time.Time `json:"this_update"`
	NextUpdate *time.Time `json:"next_update"`
	Entries    int        `json:"entries"`
	Size       int        `json:"size"`
	Origin     string     `json:"origin,omitempty"` // network, store, file
	Since      *time.Time `json:"since"`
	LastFetch  *time.Time `json:"last_fetch"`
	NextFetch  *time.Time `json:"next_fetch"`
	LastError  string     `json:"last_error,omitempty"`
	Failures   int        `json:"failures"`
}

func crlStatus(c crlfetch.CRLStatus) crlView {
	v := crlView{
		Source: c.Source, Explicit: c.Explicit, Issuer: c.Issuer, State: "none",
		LastFetch: timePtr(c.LastFetch), NextFetch: timePtr(c.NextFetch), Failures: c.Failures,
	}
	if c.Held {
		v.State = "held"
		if c.Expired {
			v.State = "expired"
		}
		if c.Number != nil {
			n := c.Number.String()
			v.Number = &n
		}
		v.ThisUpdate, v.NextUpdate, v.Since = timePtr(c.ThisUpdate), timePtr(c.NextUpdate), timePtr(c.Since)
		v.Entries, v.Size, v.Origin = c.Entries, c.Size, c.Origin
	}
	if c.LastError != nil {
		v.LastError = c.LastError.Error()
	}
	return v
}
