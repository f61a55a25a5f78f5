package statuspage_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
	"github.com/tlsemit/tlsemit/ocspfetch"
	"github.com/tlsemit/tlsemit/statuspage"
)

// TestManyRequestsOneRendering: requests that arrive together share one
// rendering of the page (the same generated_at, in JSON and HTML alike),
// and a client that accepts gzip gets the same page compressed.
func TestManyRequestsOneRendering(t *testing.T) {
	ca := testpki.NewCA(t, "page CA")
	f, err := ocspfetch.New(ocspfetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 50 {
		f.OCSPRequest(ca.Issue(t, testpki.LeafOptions{}).DER, ca.DER, func(error, []byte) {})
	}
	page := httptest.NewServer(statuspage.Handler(nil, f))
	defer page.Close()
	get := func(accept, encoding string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, page.URL, nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("Accept-Encoding", encoding) // set by hand: the client leaves the body as sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Error(err)
		}
		return resp, b
	}
	const n = 40
	stamps := make([]time.Time, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			_, b := get("application/json", "identity")
			var p struct {
				At time.Time `json:"generated_at"`
			}
			if err := json.Unmarshal(b, &p); err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			stamps[i] = p.At
		})
	}
	wg.Wait()
	// One rendering a second at most: as many distinct pages as seconds
	// began while the requests ran.
	distinct := map[time.Time]bool{}
	for _, at := range stamps {
		distinct[at] = true
	}
	if max := 1 + int(time.Since(start)/time.Second); len(distinct) > max {
		t.Fatalf("%d requests got %d distinct pages within %v (at most %d renderings): each request rendered the page", n, len(distinct), time.Since(start), max)
	}

	resp, plain := get("text/html", "identity")
	zresp, zipped := get("text/html", "gzip, deflate")
	if resp.Header.Get("Content-Encoding") != "" || zresp.Header.Get("Content-Encoding") != "gzip" ||
		zresp.Header.Get("Vary") != "Accept, Accept-Encoding" {
		t.Fatalf("Content-Encoding %q and %q, Vary %q", resp.Header.Get("Content-Encoding"), zresp.Header.Get("Content-Encoding"), zresp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) || len(zipped) >= len(plain) {
		t.Errorf("the gzip form (%d bytes) is not the page (%d bytes) compressed: %v", len(zipped), len(plain), err)
	}
}
