// Package httpfetch gets what a certificate points a server at (a CRL, an
// OCSP response, an issuer) from hosts the server does not trust: over
// http or https only, following redirects only within the URL's origin,
// refusing internal addresses on request, and reading a bounded body,
// decompressed within the same bound.
//
// crlfetch gets CRLs with a Getter. ocspfetch, whose OCSP requests differ
// (POST, no content encoding, its own error texts), applies the same
// Rules to its own requests, with its own sentinels.
package httpfetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/tlsemit/tlsemit/internal/errwrap"
)

// Sentinel errors; every error Get returns wraps one of them (or the
// context's error).
var (
	// ErrRefusedAddress: an internal address refused with RefuseInternal,
	// or a redirect to another origin.
	ErrRefusedAddress = errors.New("httpfetch: address refused")
	// ErrUnsupportedScheme: a URL or a redirect that is not http or https.
	ErrUnsupportedScheme = errors.New("httpfetch: URL scheme is not http or https")
	// ErrTooManyRedirects: more than MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("httpfetch: too many redirects")
	// ErrUnreachable: the exchange failed (refused, reset, timed out).
	ErrUnreachable = errors.New("httpfetch: host unreachable")
	// ErrHTTPStatus: a status other than 200 (and 304 for a conditional
	// request).
	ErrHTTPStatus = errors.New("httpfetch: HTTP status is not 200")
	// ErrTooLarge: the body, or its decompressed form, is larger than
	// MaxSize; reading stopped there.
	ErrTooLarge = errors.New("httpfetch: body too large")
	// ErrEncoding: a content encoding other than gzip, or a gzip stream
	// that does not decompress.
	ErrEncoding = errors.New("httpfetch: unsupported or broken content encoding")
)

// Getter gets bodies under Rules. Its zero value is not
// usable: make one with New.
type Getter struct {
	rules  Rules
	client *http.Client
	own    bool
}

// New returns a Getter that fetches with client under r, with this
// package's sentinels for r's refusals. A nil client means one of the
// Rules' own (Rules.Client); a client given is used as is but for
// redirects, which r checks first.
func New(client *http.Client, r Rules) *Getter {
	r.ErrRefused, r.ErrScheme, r.ErrRedirects, r.ErrTooLarge = ErrRefusedAddress, ErrUnsupportedScheme, ErrTooManyRedirects, ErrTooLarge
	g := &Getter{rules: r}
	g.client, g.own = g.rules.Client(client)
	return g
}

// Close closes the idle connections of the Getter's own client (a client
// given to New stays its owner's).
func (g *Getter) Close() {
	if g.own {
		g.client.CloseIdleConnections()
	}
}

// Response is a body got.
type Response struct {
	// Body is the body, decompressed; nil for 304 Not Modified.
	Body []byte
	// NotModified reports a 304 answer to a conditional request.
	NotModified bool
	// ETag and LastModified are the validators to send next time.
	ETag, LastModified string
}

// Get fetches rawURL with the conditional headers given (If-None-Match
// from etag, If-Modified-Since from lastModified; "" for none).
func (g *Getter) Get(ctx context.Context, rawURL, etag, lastModified string) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsupportedScheme, rawURL, err)
	}
	if err := g.rules.CheckURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedScheme, err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastModified != "" {
		req.Header.Set("If-Modified-Since", lastModified)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		if g.rules.Refusal(err) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	out := &Response{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified && (etag != "" || lastModified != ""):
		out.NotModified = true
		return out, nil
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // a little, for the connection's reuse
		return nil, fmt.Errorf("%w: %s", ErrHTTPStatus, resp.Status)
	}
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if resp.Uncompressed {
		enc = "" // the transport asked for gzip and decompressed it
	}
	if enc != "" && enc != "identity" && enc != "gzip" && enc != "x-gzip" {
		return nil, fmt.Errorf("%w: Content-Encoding %q", ErrEncoding, enc)
	}
	body, err := g.rules.ReadBody(resp)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reading body: %v", ErrUnreachable, err)
	}
	if enc != "" && enc != "identity" || isGzip(body) {
		if body, err = g.rules.gunzip(body); err != nil {
			return nil, err
		}
	}
	out.Body = body
	return out, nil
}

// ReadBody reads resp's body, at most MaxSize bytes: past them, or when
// its Content-Length says it has more, an error wrapping ErrTooLarge.
// Other errors are the read's own.
func (r *Rules) ReadBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > r.MaxSize {
		return nil, errwrap.New(r.ErrTooLarge, fmt.Sprintf("Content-Length %d > %d", resp.ContentLength, r.MaxSize), nil)
	}
	return r.read(resp.Body, resp.ContentLength)
}

// read reads at most MaxSize bytes of src (ErrTooLarge past them) into a
// buffer sized from the length when it is known, so that a large body is
// not copied while it grows.
func (r *Rules) read(src io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 {
		buf.Grow(int(length) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(src, r.MaxSize+1))
	if n > r.MaxSize {
		return nil, errwrap.New(r.ErrTooLarge, fmt.Sprintf("more than %d bytes", r.MaxSize), nil)
	}
	if err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if cap(b)-len(b) > len(b)/8 {
		b = bytes.Clone(b) // what is kept is what was read, not the buffer's slack
	}
	return b, nil
}

// isGzip reports a gzip stream's magic: a host may serve a .gz file, or
// gzip the body unasked.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// gunzip decompresses b, at most MaxSize bytes of output: a gzip bomb
// stops at the limit, as a body does.
func (r *Rules) gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	out, err := r.read(zr, 0)
	if errors.Is(err, r.ErrTooLarge) {
		return nil, fmt.Errorf("%w (decompressed)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	return out, nil
}

// Rules are what a fetch of what a certificate points at must pass: its
// URL, every redirect and every address dialed, and the size of its body.
// Each refusal wraps the sentinel given for it, so that a package reports
// its own errors (a Getter's are this package's).
type Rules struct {
	// RefuseInternal refuses loopback, private, link-local, carrier-grade
	// NAT, unspecified and multicast addresses: IP literals and localhost
	// names in URLs, and, with a client of the Rules' own, every address
	// dialed.
	RefuseInternal bool
	// MaxRedirects bounds the redirects followed, each within the first
	// URL's scheme, host and port.
	MaxRedirects int
	// MaxSize bounds a body (and, for a Getter, its decompressed form).
	MaxSize int64
	// The sentinels of a refused address or redirect to another origin,
	// a URL that is not http(s), too many redirects, a body too large.
	ErrRefused, ErrScheme, ErrRedirects, ErrTooLarge error
}

// Client returns the client to fetch with: for a nil c, one of the
// Rules' own (bounded connect, TLS and header times, no proxy, no
// cookies, and, with RefuseInternal, a dialer that checks every address
// it connects to), own true, its idle connections its owner's to close;
// else a copy of c whose CheckRedirect applies the Rules before c's own.
func (r *Rules) Client(c *http.Client) (client *http.Client, own bool) {
	if c == nil {
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		if r.RefuseInternal {
			d.Control = r.control
		}
		return &http.Client{
			CheckRedirect: r.CheckRedirect,
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           d.DialContext,
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: 10 * time.Second,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       30 * time.Second,
			},
		}, true
	}
	cc := *c
	theirs := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := r.CheckRedirect(req, via); err != nil || theirs == nil {
			return err
		}
		return theirs(req, via)
	}
	return &cc, false
}

// Refusal reports whether err, from a Client's Do, is a refusal of the
// Rules' rather than a failed exchange.
func (r *Rules) Refusal(err error) bool {
	return errors.Is(err, r.ErrRedirects) || errors.Is(err, r.ErrRefused) || errors.Is(err, r.ErrScheme)
}

// control is the dialer's check of every address it connects to.
func (r *Rules) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errwrap.New(r.ErrRefused, address, err)
	}
	if internalAddr(ap.Addr()) {
		return errwrap.New(r.ErrRefused, address, nil)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// internalAddr reports whether a is an address a certificate should not
// be able to point a server at.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a)
}

// CheckURL allows only absolute http(s) URLs and, with RefuseInternal,
// no internal IP literal or localhost name as host.
func (r *Rules) CheckURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return errwrap.New(r.ErrScheme, u.Redacted(), nil)
	}
	if r.RefuseInternal {
		host := u.Hostname()
		if lower := strings.ToLower(host); lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
			return errwrap.New(r.ErrRefused, host, nil)
		}
		if a, err := netip.ParseAddr(host); err == nil && internalAddr(a) {
			return errwrap.New(r.ErrRefused, host, nil)
		}
	}
	return nil
}

// CheckRedirect, an http.Client's, follows a redirect only within the
// first request's origin, MaxRedirects times at most, each hop passing
// CheckURL: the host, or whoever is on the plain-HTTP path to it, cannot
// send the server elsewhere.
func (r *Rules) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > r.MaxRedirects {
		return errwrap.New(r.ErrRedirects, fmt.Sprintf("after %d", r.MaxRedirects), nil)
	}
	if err := r.CheckURL(req.URL); err != nil {
		return err
	}
	if from := via[0].URL; origin(req.URL) != origin(from) {
		return errwrap.New(r.ErrRefused, "redirect from "+origin(from)+" to "+origin(req.URL), nil)
	}
	return nil
}

// origin is u's scheme, host and port, the port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
