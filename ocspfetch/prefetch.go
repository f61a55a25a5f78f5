package ocspfetch

import (
	"context"
	"crypto/tls"
	"sync"
)

// prefetchConcurrency bounds the fetches Prefetch runs at once, so that
// warming thousands of certificates does not open thousands of requests to
// one responder.
const prefetchConcurrency = 8

// PrefetchResult is what Prefetch got for one certificate: what Staple
// returns for it.
type PrefetchResult struct {
	Staple *Staple
	Err    error
}

// Prefetch warms the staples of certs before the server takes its first
// connection, so that Must-Staple certificates are stapled from the first
// handshake: for each, the leaf is Certificate[0] and its issuer
// Certificate[1] (without one, the caIssuers URL is used). It returns when
// every certificate has its answer or ctx is done, with one result per
// certificate, in order: a Staple with a nil error for a Good answer,
// otherwise the error Staple would give (ErrNoResponder for a certificate
// without a responder, ctx.Err() for one whose fetch was not over; that
// fetch goes on in the background and serves the first handshake). For a
// certificate whose revocation comes from its CRL, Prefetch reads that CRL
// and reports what Staple does (ErrNoResponder when it says good,
// ErrRevoked when it lists the certificate).
func (f *Fetcher) Prefetch(ctx context.Context, certs ...tls.Certificate) []PrefetchResult {
	out := make([]PrefetchResult, len(certs))
	sem := make(chan struct{}, prefetchConcurrency)
	var wg sync.WaitGroup
	for i, c := range certs {
		if len(c.Certificate) == 0 {
			out[i].Err = newErr(ErrBadCertificate, "empty tls.Certificate", nil)
			continue
		}
		var issuer []byte
		if len(c.Certificate) > 1 {
			issuer = c.Certificate[1]
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i].Err = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i].Staple, out[i].Err = f.Staple(ctx, c.Certificate[0], issuer)
		}()
	}
	wg.Wait()
	return out
}
