// Package httpfetch gets what a certificate points a server at (a CRL, an
// OCSP response, an issuer) from hosts the server does not trust: over
// http or https only, following redirects only within the URL's origin,
// refusing internal addresses on request, and reading a bounded body,
// decompressed within the same bound.
//
// crlfetch uses it; it holds the rules ocspfetch/http.go keeps for OCSP,
// so that ocspfetch can move onto it.
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

// Getter gets bodies under the package's rules. Its zero value is not
// usable: make one with New.
type Getter struct {
	client  *http.Client
	own     bool
	refuse  bool
	maxSize int64
	maxHops int
}

// Options configure New.
type Options struct {
	// Client is used as is but for redirects, which the Getter's rules
	// check first (then the client's own CheckRedirect). Nil means a
	// client of the Getter's own: bounded connect, TLS and header times,
	// no proxy, no cookies, and, with RefuseInternal, a dialer that checks
	// every address it connects to.
	Client *http.Client
	// RefuseInternal refuses loopback, private, link-local, carrier-grade
	// NAT, unspecified and multicast addresses (every dialed address with
	// the Getter's own client; IP literals and localhost names in URLs
	// with any client).
	RefuseInternal bool
	// MaxSize bounds a body, compressed and decompressed.
	MaxSize int64
	// MaxRedirects bounds the redirects followed, each within the first
	// URL's scheme, host and port.
	MaxRedirects int
}

// New returns a Getter.
func New(o Options) *Getter {
	g := &Getter{refuse: o.RefuseInternal, maxSize: o.MaxSize, maxHops: o.MaxRedirects}
	if o.Client == nil {
		g.client, g.own = defaultClient(o.RefuseInternal), true
		g.client.CheckRedirect = g.checkRedirect
	} else {
		c := *o.Client
		theirs := c.CheckRedirect
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if err := g.checkRedirect(req, via); err != nil || theirs == nil {
				return err
			}
			return theirs(req, via)
		}
		g.client = &c
	}
	return g
}

// Close closes the idle connections of the Getter's own client (a client
// given in Options stays its owner's).
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
	if err := g.checkURL(u); err != nil {
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
		for _, s := range []error{ErrTooManyRedirects, ErrRefusedAddress, ErrUnsupportedScheme} {
			if errors.Is(err, s) {
				return nil, err
			}
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
	if resp.ContentLength > g.maxSize {
		return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrTooLarge, resp.ContentLength, g.maxSize)
	}
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if resp.Uncompressed {
		enc = "" // the transport asked for gzip and decompressed it
	}
	if enc != "" && enc != "identity" && enc != "gzip" && enc != "x-gzip" {
		return nil, fmt.Errorf("%w: Content-Encoding %q", ErrEncoding, enc)
	}
	body, err := readLimited(resp.Body, resp.ContentLength, g.maxSize)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reading body: %v", ErrUnreachable, err)
	}
	if enc != "" && enc != "identity" || isGzip(body) {
		if body, err = gunzip(body, g.maxSize); err != nil {
			return nil, err
		}
	}
	out.Body = body
	return out, nil
}

// readLimited reads at most max bytes of r (ErrTooLarge past them) into a
// buffer sized from the Content-Length when there is one, so that a large
// body is not copied while it grows.
func readLimited(r io.Reader, length, max int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 {
		buf.Grow(int(length) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if n > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
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

// gunzip decompresses b, at most max bytes of output: a gzip bomb stops at
// the limit, as a body does.
func gunzip(b []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	out, err := readLimited(zr, 0, max)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("%w (decompressed)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	return out, nil
}

// defaultClient bounds every step but the body, which the caller's
// context bounds; no cookies, no proxy; with refuse, every dialed address
// is checked.
func defaultClient(refuse bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if refuse {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || InternalAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrRefusedAddress, address)
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		},
	}
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// InternalAddr reports whether a is an address a certificate should not
// be able to point a server at.
func InternalAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a)
}

// checkURL allows only absolute http(s) URLs and, with refuse, no
// internal IP literal or localhost name as host.
func (g *Getter) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: %s", ErrUnsupportedScheme, u.Redacted())
	}
	if g.refuse {
		host := strings.ToLower(u.Hostname())
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return fmt.Errorf("%w: %s", ErrRefusedAddress, host)
		}
		if a, err := netip.ParseAddr(host); err == nil && InternalAddr(a) {
			return fmt.Errorf("%w: %s", ErrRefusedAddress, host)
		}
	}
	return nil
}

// checkRedirect follows a redirect only within the first request's
// origin, MaxRedirects times at most, each hop passing checkURL: the host,
// or whoever is on the plain-HTTP path to it, cannot send the server
// elsewhere.
func (g *Getter) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > g.maxHops {
		return fmt.Errorf("%w: after %d", ErrTooManyRedirects, g.maxHops)
	}
	if err := g.checkURL(req.URL); err != nil {
		return err
	}
	if from := via[0].URL; Origin(req.URL) != Origin(from) {
		return fmt.Errorf("%w: redirect from %s to %s", ErrRefusedAddress, Origin(from), Origin(req.URL))
	}
	return nil
}

// Origin is u's scheme, host and port, the port made explicit.
func Origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
