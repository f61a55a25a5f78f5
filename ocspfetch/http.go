package ocspfetch

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
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

// getLimit is RFC 5019's bound: requests whose URL-encoded form is shorter
// than this go by GET (cacheable by HTTP caches), longer ones by POST.
const getLimit = 255

// defaultClient is the Fetcher's own HTTP client: bounded in time, no
// cookies, no proxy, bounded redirects, and, with refuse, a dialer that
// checks every address it connects to.
func defaultClient(refuse bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if refuse {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return newErr(ErrRefusedAddress, address, err)
			}
			if internalAddr(ap.Addr()) {
				return newErr(ErrRefusedAddress, address, nil)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: 15 * time.Second,
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

// internalAddr reports whether a is an address a certificate should not be
// able to point the server at.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || cgnat.Contains(a)
}

// checkURL allows only absolute http(s) URLs and, with refuse, no internal
// IP literal as host.
func (f *Fetcher) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return newErr(ErrUnsupportedScheme, u.Redacted(), nil)
	}
	if f.opts.RefuseInternalAddresses {
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
			return newErr(ErrRefusedAddress, host, nil)
		}
		if a, err := netip.ParseAddr(host); err == nil && internalAddr(a) {
			return newErr(ErrRefusedAddress, host, nil)
		}
	}
	return nil
}

// checkRedirect follows a redirect only within the first request's scheme
// and host (and port), MaxRedirects times at most, each hop passing
// checkURL: a responder, or whoever is on the plain-HTTP path to it, cannot
// send the server elsewhere.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return newErr(ErrTooManyRedirects, fmt.Sprintf("after %d", MaxRedirects), nil)
	}
	if err := f.checkURL(req.URL); err != nil {
		return err
	}
	if from := via[0].URL; origin(req.URL) != origin(from) {
		return newErr(ErrRefusedAddress, "redirect from "+origin(from)+" to "+origin(req.URL), nil)
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

// postOCSP asks the responder at base about the DER request reqDER, by GET
// when the encoded request is short enough, else by POST.
func (f *Fetcher) postOCSP(ctx context.Context, base string, reqDER []byte) ([]byte, error) {
	enc := url.QueryEscape(base64.StdEncoding.EncodeToString(reqDER))
	var req *http.Request
	var err error
	if len(enc) < getLimit {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/"+enc, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base, bytes.NewReader(reqDER))
		if err == nil {
			req.Header.Set("Content-Type", "application/ocsp-request")
		}
	}
	if err != nil {
		return nil, newErr(ErrUnsupportedScheme, base, err)
	}
	req.Header.Set("Accept", "application/ocsp-response")
	return f.do(req)
}

// do runs req under the Fetcher's rules and returns the body, read up to
// MaxResponseSize and not a byte further.
func (f *Fetcher) do(req *http.Request) ([]byte, error) {
	if err := f.checkURL(req.URL); err != nil {
		return nil, err
	}
	f.stats.requests.Add(1)
	resp, err := f.client.Do(req)
	if err != nil {
		for _, s := range []error{ErrTooManyRedirects, ErrRefusedAddress, ErrUnsupportedScheme} {
			if errors.Is(err, s) {
				return nil, err
			}
		}
		if ctxErr := req.Context().Err(); ctxErr != nil && f.ctx.Err() != nil {
			return nil, newErr(ErrClosed, "", err)
		}
		return nil, newErr(ErrUnreachable, "", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused, no more.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, newErr(ErrHTTPStatus, resp.Status, nil)
	}
	limit := f.opts.MaxResponseSize
	if resp.ContentLength > limit {
		return nil, newErr(ErrResponseTooLarge, fmt.Sprintf("Content-Length %d > %d", resp.ContentLength, limit), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if int64(len(body)) > limit {
		return nil, newErr(ErrResponseTooLarge, fmt.Sprintf("more than %d bytes", limit), nil)
	}
	if err != nil {
		return nil, newErr(ErrUnreachable, "reading body", err)
	}
	return body, nil
}

// fetchIssuer downloads the issuer from cert's caIssuers URL (DER or PEM)
// and checks that it signed cert.
func (f *Fetcher) fetchIssuer(ctx context.Context, cert *x509.Certificate) (*x509.Certificate, error) {
	u := issuerURL(cert)
	if u == "" {
		return nil, newErr(ErrNoIssuer, "no issuer given and no http(s) caIssuers URL", nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, newErr(ErrNoIssuer, u, err)
	}
	body, err := f.do(req)
	if err != nil {
		return nil, newErr(ErrNoIssuer, "caIssuers "+u, err)
	}
	if b, _ := pem.Decode(body); b != nil && b.Type == "CERTIFICATE" {
		body = b.Bytes
	}
	issuer, err := x509.ParseCertificate(body)
	if err != nil {
		return nil, newErr(ErrNoIssuer, "caIssuers "+u+" is not a DER or PEM certificate", err)
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, newErr(ErrNoIssuer, "caIssuers certificate did not sign the certificate", err)
	}
	return issuer, nil
}
