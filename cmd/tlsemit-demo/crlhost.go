package main

import (
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// crlHost publishes the demo CA's CRL over HTTP at url, as a CA's CRL
// distribution point does, and says so for each fetch.
type crlHost struct {
	url  string
	tr   *tracer
	crl  atomic.Pointer[[]byte]
	stop func()
}

func startCRLHost(tr *tracer) (*crlHost, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &crlHost{url: "http://" + ln.Addr().String() + "/ca.crl", tr: tr}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	go hs.Serve(ln)
	h.stop = func() { hs.Close() }
	return h, nil
}

// publish makes ca's CRL listing revoked, valid a day (nobody fetches it
// again during the tour), and serves it from then on.
func (h *crlHost) publish(ca *testpki.CA, revoked ...*big.Int) {
	der := ca.CRL(testpki.Exit, testpki.CRLOptions{Revoked: revoked, NextUpdate: time.Now().Add(24 * time.Hour)})
	h.crl.Store(&der)
	h.tr.log("crl host", "publishing %q's CRL (number 1, %d revoked) at %s", ca.Name, len(revoked), h.url)
}

func (h *crlHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	der := h.crl.Load()
	if r.URL.Path != "/ca.crl" || der == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(*der)
	h.tr.log("crl host", "served /ca.crl (%d bytes)", len(*der))
}
