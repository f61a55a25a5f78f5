package httpfetch

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
)

// TestInternalAddr: what a certificate may not point a server at.
func TestInternalAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "192.168.0.1": true, "172.16.0.1": true,
		"169.254.169.254": true, "fe80::1": true, "fc00::1": true, "100.64.0.1": true, "0.0.0.0": true,
		"::ffff:127.0.0.1": true, "8.8.8.8": false, "2606:4700::1111": false,
	} {
		if got := internalAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("internalAddr(%s) = %v", addr, got)
		}
	}
}

// TestRulesSentinels: each refusal wraps the sentinel the Rules were
// given for it, so that ocspfetch reports its own.
func TestRulesSentinels(t *testing.T) {
	errRefused, errScheme, errRedirects := errors.New("refused"), errors.New("scheme"), errors.New("redirects")
	r := &Rules{RefuseInternal: true, MaxRedirects: 1, ErrRefused: errRefused, ErrScheme: errScheme, ErrRedirects: errRedirects}
	req := func(s string) *http.Request {
		u, _ := url.Parse(s)
		return &http.Request{URL: u}
	}
	for _, c := range []struct {
		err  error
		want error
		text string
	}{
		{r.CheckURL(req("ftp://example.com/x").URL), errScheme, "scheme: ftp://example.com/x"},
		{r.CheckURL(req("http://Foo.LOCALHOST/x").URL), errRefused, "refused: Foo.LOCALHOST"},
		{r.CheckURL(req("http://[::1]:8080/x").URL), errRefused, "refused: ::1"},
		{r.control("tcp", "10.0.0.1:80", nil), errRefused, "refused: 10.0.0.1:80"},
		{r.CheckRedirect(req("https://example.com/b"), []*http.Request{req("http://example.com/a")}), errRefused,
			"refused: redirect from http://example.com:80 to https://example.com:443"},
		{r.CheckRedirect(req("http://example.com/c"), []*http.Request{req("http://example.com/a"), req("http://example.com/b")}), errRedirects,
			"redirects: after 1"},
	} {
		if !errors.Is(c.err, c.want) || c.err.Error() != c.text || !r.Refusal(c.err) {
			t.Errorf("%v, want %q", c.err, c.text)
		}
	}
	if err := r.CheckRedirect(req("http://EXAMPLE.com:80/b"), []*http.Request{req("http://example.com/a")}); err != nil {
		t.Errorf("same origin refused: %v", err)
	}
	if err := r.control("tcp", "8.8.8.8:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}
