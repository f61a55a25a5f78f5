package crl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrUnknownAnchor is the cause of the ErrNoCRL of a trust anchor that is
// not self-issued and whose issuer is none of the CA certificates known
// (Anchors): the CRL that speaks for it cannot be verified, nor the
// anchor checked.
var ErrUnknownAnchor = errors.New("crl: the trust anchor is not self-issued and its issuer is not among the CA certificates known, so its revocation cannot be checked")

// Anchors knows the way up from trust anchors that are not self-issued to
// a self-issued root. crypto/x509 ends a chain at any certificate of its
// roots, an intermediate CA included; OpenSSL (Node) builds it on to a
// self-signed root and checks the intermediate against the root's CRL.
// Check does the same with the way up that Anchors finds among the CA
// certificates it was made with: tlsserver's CA, crlfetch's Sources'
// issuers.
//
// The way up from each of those certificates is found when Anchors is
// made; that of another certificate (an intermediate of crypto/tls's
// ClientCAs, which crlfetch does not see) when it is first asked for, and
// kept. Asking again does not allocate.
type Anchors struct {
	cas []*x509.Certificate
	mu  sync.Mutex                                     // serializes additions to ups
	ups atomic.Pointer[map[string][]*x509.Certificate] // by the anchor's DER: its issuers, root last; nil: none
}

// maxAnchors bounds the ways up kept (found or not) for certificates that
// are not among the CA certificates: trust anchors are few, but a caller
// of crlfetch's Check may hand in any chain.
const maxAnchors = 1024

// NewAnchors returns the ways up within cas. A certificate whose issuers
// (same name, and its signature verified with their key) do not lead to a
// self-issued certificate of cas has none.
func NewAnchors(cas []*x509.Certificate) *Anchors {
	a := &Anchors{cas: cas}
	ups := make(map[string][]*x509.Certificate)
	for _, c := range cas {
		if !selfIssued(c) {
			ups[string(c.Raw)] = a.find(c)
		}
	}
	a.ups.Store(&ups)
	return a
}

// Up returns the issuers of anchor up to a self-issued root, nearest
// first, or nil when they are not known (or a is nil). It does not
// allocate once it has been asked about anchor.
func (a *Anchors) Up(anchor *x509.Certificate) []*x509.Certificate {
	if a == nil {
		return nil
	}
	if up, ok := (*a.ups.Load())[string(anchor.Raw)]; ok {
		return up
	}
	up := a.find(anchor)
	a.mu.Lock()
	defer a.mu.Unlock()
	old := *a.ups.Load()
	if len(old) >= len(a.cas)+maxAnchors {
		return up
	}
	ups := make(map[string][]*x509.Certificate, len(old)+1)
	for k, v := range old {
		ups[k] = v
	}
	ups[string(anchor.Raw)] = up
	a.ups.Store(&ups)
	return up
}

// find returns c's issuers among a.cas up to a self-issued one, or nil:
// at each step a self-issued issuer if there is one, else the last found.
func (a *Anchors) find(c *x509.Certificate) []*x509.Certificate {
	var up []*x509.Certificate
	for cur := c; !selfIssued(cur); {
		if len(up) >= len(a.cas) {
			return nil // a loop of cross-certificates
		}
		var next *x509.Certificate
		for _, p := range a.cas {
			if !p.Equal(cur) && bytes.Equal(cur.RawIssuer, p.RawSubject) && cur.CheckSignatureFrom(p) == nil {
				if next = p; selfIssued(p) {
					break // the root: a cross-certificate of it could lead into a loop
				}
			}
		}
		if next == nil {
			return nil
		}
		up = append(up, next)
		cur = next
	}
	return up
}

func selfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, c.RawSubject) }
