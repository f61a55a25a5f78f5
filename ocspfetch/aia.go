package ocspfetch

import (
	"crypto/x509"
	"encoding/asn1"
	"net/url"
	"strings"
)

// oidTLSFeature is the TLS Feature extension of RFC 7633.
var oidTLSFeature = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

// statusRequest is the TLS extension number of status_request (RFC 6066).
const statusRequest = 5

// ResponderURL returns the first http or https OCSP responder URL in cert's
// Authority Information Access extension, the Go form of Node's
// ocsp.getOCSPURI. Other schemes (ldap, file, …) are skipped: a responder
// is only ever reached over HTTP. With none, the error wraps
// ErrNoResponder.
func ResponderURL(cert *x509.Certificate) (string, error) {
	if u := firstHTTPURL(cert.OCSPServer); u != "" {
		return u, nil
	}
	if len(cert.OCSPServer) > 0 {
		return "", newErr(ErrNoResponder, "only non-http(s) URLs: "+strings.Join(cert.OCSPServer, ", "), nil)
	}
	return "", ErrNoResponder
}

// issuerURL returns the first http(s) caIssuers URL of cert, or "".
func issuerURL(cert *x509.Certificate) string {
	return firstHTTPURL(cert.IssuingCertificateURL)
}

func firstHTTPURL(urls []string) string {
	for _, s := range urls {
		if httpURL(s) {
			return s
		}
	}
	return ""
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// MustStaple reports whether cert carries the TLS Feature extension
// (1.3.6.1.5.5.7.1.24) listing status_request: a client may then refuse the
// connection when no valid OCSP staple comes with the certificate.
func MustStaple(cert *x509.Certificate) bool {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidTLSFeature) {
			continue
		}
		var features []int
		if rest, err := asn1.Unmarshal(ext.Value, &features); err != nil || len(rest) > 0 {
			return false
		}
		for _, f := range features {
			if f == statusRequest {
				return true
			}
		}
	}
	return false
}
