package crl

import (
	"crypto/x509"
	"fmt"
)

// Set is a fixed collection of verified CRLs, looked up by issuer: what
// Node's crl option holds (tlsserver's static CRL). Its Find is a Finder.
type Set struct {
	byIssuer map[string][]*CRL
}

// NewSet returns the set of crls, kept in the order given (of two equally
// new CRLs of an issuer, the first is used, as in Node).
func NewSet(crls ...*CRL) *Set {
	s := &Set{byIssuer: make(map[string][]*CRL)}
	for _, c := range crls {
		k := string(c.RawIssuer)
		s.byIssuer[k] = append(s.byIssuer[k], c)
	}
	return s
}

// LoadSet decodes each of blobs (DER, or PEM holding one or more CRLs, as
// Node's crl option takes them) and verifies every CRL with the one of cas
// that issued it. A CRL that verifies with none of them is an error (it
// could never revoke anyone): Node would hold it silently.
func LoadSet(blobs [][]byte, cas []*x509.Certificate) (*Set, error) {
	var crls []*CRL
	for i, b := range blobs {
		ders, err := Decode(b)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i, err)
		}
		for j, der := range ders {
			c, err := Load(der, cas...)
			if err != nil {
				return nil, fmt.Errorf("CRL %d.%d: %w", i, j, err)
			}
			crls = append(crls, c)
		}
	}
	return NewSet(crls...), nil
}

// Len returns the number of CRLs in the set.
func (s *Set) Len() int {
	n := 0
	for _, cs := range s.byIssuer {
		n += len(cs)
	}
	return n
}

// Find returns the CRLs of issuer's name (Check keeps those verified with
// its key that cover cert). It does not allocate.
func (s *Set) Find(_, issuer *x509.Certificate) ([]*CRL, error) {
	return s.byIssuer[string(issuer.RawSubject)], nil
}
