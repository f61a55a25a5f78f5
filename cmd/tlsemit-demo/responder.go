package main

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// responder is the demo's OCSP responder: it answers for the certificates
// its CA issued, signs with the CA's key, and can revoke.
type responder struct {
	ca       *x509.Certificate
	key      crypto.Signer
	validity time.Duration

	mu      sync.Mutex
	revoked map[string]time.Time // serial (decimal) → revocation time

	requests  atomic.Int64
	onRequest func(status string) // called after each answer, if set
}

func newResponder(ca *x509.Certificate, key crypto.Signer, validity time.Duration) *responder {
	return &responder{ca: ca, key: key, validity: validity, revoked: map[string]time.Time{}}
}

func (r *responder) revoke(serial *big.Int) {
	r.mu.Lock()
	r.revoked[serial.String()] = time.Now()
	r.mu.Unlock()
}

// ServeHTTP answers RFC 6960 requests by POST and by GET (RFC 5019).
func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	var der []byte
	var err error
	switch req.Method {
	case http.MethodPost:
		der, err = io.ReadAll(io.LimitReader(req.Body, 64<<10))
	case http.MethodGet:
		var p string
		if p, err = url.PathUnescape(strings.TrimPrefix(req.URL.Path, "/")); err == nil {
			der, err = base64.StdEncoding.DecodeString(p)
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	q, err := ocsp.ParseRequest(der)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := ocsp.Response{
		Status:       ocsp.Good,
		SerialNumber: q.SerialNumber,
		IssuerHash:   q.HashAlgorithm,
		ThisUpdate:   now.Add(-time.Second),
		NextUpdate:   now.Add(r.validity),
	}
	r.mu.Lock()
	if at, ok := r.revoked[q.SerialNumber.String()]; ok {
		tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, at.UTC().Truncate(time.Second)
	}
	r.mu.Unlock()
	resp, err := ocsp.CreateResponse(r.ca, r.ca, tmpl, r.key)
	if err != nil {
		w.Write(ocsp.InternalErrorErrorResponse)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
	if r.onRequest != nil {
		status := "good"
		if tmpl.Status == ocsp.Revoked {
			status = "revoked"
		}
		r.onRequest(status + " for serial " + strings.ToUpper(q.SerialNumber.Text(16)))
	}
}
