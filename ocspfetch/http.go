package ocspfetch

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// getLimit is RFC 5019's bound: requests whose URL-encoded form is shorter
// than this go by GET (cacheable by HTTP caches), longer ones by POST.
const getLimit = 255

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
	if err := f.rules.CheckURL(req.URL); err != nil {
		return nil, err
	}
	f.stats.requests.Add(1)
	resp, err := f.client.Do(req)
	if err != nil {
		if f.rules.Refusal(err) {
			return nil, err
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
	body, err := f.rules.ReadBody(resp)
	if err != nil && !errors.Is(err, ErrResponseTooLarge) {
		return nil, newErr(ErrUnreachable, "reading body", err)
	}
	return body, err
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
