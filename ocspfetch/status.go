package ocspfetch

import (
	"cmp"
	"slices"
	"time"
)

// CertificateStatus is what a Fetcher knows of one certificate it staples:
// what a status page shows, and what a health check may want ("is every
// certificate stapled, and for how long yet?").
type CertificateStatus struct {
	// Names are the certificate's DNS names (else its common name), then
	// its IP addresses. Empty for bytes that do not parse as a
	// certificate.
	Names []string
	// Subject is the certificate's subject, Serial its serial number in
	// upper-case hex.
	Subject, Serial string
	// ResponderURL is the OCSP responder asked; "" when the certificate
	// names none (it is never stapled).
	ResponderURL string
	// Source is where the certificate's revocation is learned: "ocsp"
	// (its responder; the answer is Staple), "crl" (it names no
	// responder but a CRL distribution point; the answer is CRL, and
	// nothing is stapled), or "" (it names neither).
	Source string
	// CRL is what the certificate's CRL says, for Source "crl": nil
	// until its first reading, and while it cannot be read (LastError
	// says why).
	CRL *CRLAnswer
	// MustStaple reports the TLS Feature extension (see MustStaple).
	MustStaple bool
	// Staple is the verified answer held (Good, Revoked or Unknown) while
	// it is within its service time; nil when there is none.
	Staple *Staple
	// Stapled reports whether handshakes get Staple now: a Good answer,
	// or a Revoked one with StapleRevoked.
	Stapled bool
	// NextRefresh is when the Fetcher asks next (a refresh, or a retry
	// after a failure); zero when a fetch is under way or none is
	// planned (a certificate without a responder).
	NextRefresh time.Time
	// LastError is why the certificate is not stapled, or the latest
	// failure while a cached staple is still served (a responder outage);
	// nil after a Good answer (from its responder or its CRL). It wraps a
	// sentinel (ErrUnreachable, ErrRevoked, ErrNoResponder,
	// ErrCRLUnavailable, …).
	LastError error
	// Failures counts the failed fetches since the last success.
	Failures int
}

// Certificates returns the status of every certificate the Fetcher
// tracks (those handshakes and Staple or Prefetch asked about, until they
// go unused for a day), sorted by first name, then serial. It takes each
// certificate's lock briefly and never touches the network.
func (f *Fetcher) Certificates() []CertificateStatus {
	now := f.now().UnixNano()
	es := f.certs.all()
	out := make([]CertificateStatus, 0, len(es))
	for _, e := range es {
		cs := CertificateStatus{Subject: e.subject, Serial: e.serial, ResponderURL: e.url, Source: e.source(), MustStaple: e.mustStaple}
		if e.cert != nil {
			cs.Names = certNames(e.cert)
		}
		st := e.cur.Load()
		if st != nil && now < st.until {
			cs.Staple, cs.Stapled = st.staple, st.der != nil
		}
		e.mu.Lock()
		cs.LastError, cs.Failures = e.lastErr, e.failures
		if e.crlAns != nil {
			a := *e.crlAns
			cs.CRL = &a
		}
		fetching := e.flight != nil
		e.mu.Unlock()
		if cs.LastError == nil && st != nil && st.der == nil {
			cs.LastError = st.err // no responder, a certificate that does not parse
		}
		f.sched.mu.Lock()
		if e.index >= 0 && !e.unfetched && !fetching {
			cs.NextRefresh = e.due
		}
		f.sched.mu.Unlock()
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b CertificateStatus) int {
		return cmp.Or(cmp.Compare(firstName(a), firstName(b)), cmp.Compare(a.Serial, b.Serial))
	})
	return out
}

func firstName(c CertificateStatus) string {
	if len(c.Names) > 0 {
		return c.Names[0]
	}
	return ""
}

// source names where e's revocation is learned.
func (e *entry) source() string {
	switch {
	case e.url != "":
		return "ocsp"
	case e.crl:
		return "crl"
	}
	return ""
}
