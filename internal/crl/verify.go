package crl

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"time"
)

// The signature algorithms crypto/x509 verifies, by the DER of their
// AlgorithmIdentifier (with the NULL parameters RSA PKCS #1 v1.5 carries,
// and without for ECDSA and Ed25519, as RFC 5758 and RFC 8410 say; the
// RSASSA-PSS ones with the parameters crypto/x509 itself writes).
var sigAlgs = map[string]x509.SignatureAlgorithm{
	"300d06092a864886f70d0101050500": x509.SHA1WithRSA,
	"300d06092a864886f70d01010b0500": x509.SHA256WithRSA,
	"300d06092a864886f70d01010c0500": x509.SHA384WithRSA,
	"300d06092a864886f70d01010d0500": x509.SHA512WithRSA,
	"300b06092a864886f70d01010b":     x509.SHA256WithRSA, // NULL omitted, as some CAs do
	"300b06092a864886f70d01010c":     x509.SHA384WithRSA,
	"300b06092a864886f70d01010d":     x509.SHA512WithRSA,
	"300906072a8648ce3d0401":         x509.ECDSAWithSHA1,
	"300a06082a8648ce3d040302":       x509.ECDSAWithSHA256,
	"300a06082a8648ce3d040303":       x509.ECDSAWithSHA384,
	"300a06082a8648ce3d040304":       x509.ECDSAWithSHA512,
	"300506032b6570":                 x509.PureEd25519,
	"304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120": x509.SHA256WithRSAPSS,
	"304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130": x509.SHA384WithRSAPSS,
	"304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140": x509.SHA512WithRSAPSS,
}

func signatureAlgorithm(ai []byte) (x509.SignatureAlgorithm, error) {
	if alg, ok := sigAlgs[hex.EncodeToString(ai)]; ok {
		return alg, nil
	}
	return x509.UnknownSignatureAlgorithm, newErr(ErrUnsupported, "signature algorithm "+hex.EncodeToString(ai), nil)
}

// Load parses der (a DER CRL), verifies its signature with the one of
// issuers that issued it (by name), and indexes its entries. It refuses a
// CRL that does not parse (ErrMalformed), that this package does not use
// (ErrUnsupported), whose issuer is not among issuers (ErrNoIssuer), or
// whose signature does not verify or whose issuer may not sign CRLs: no
// cRLSign key usage (ErrSignature). Time is not checked here: see
// Policy.Usable. der is kept and must not be modified afterwards.
//
// The signature is checked before the entries are indexed, so a forged
// CRL costs a hash of its bytes and no index.
func Load(der []byte, issuers ...*x509.Certificate) (*CRL, error) {
	c, entries, err := parseTBS(der)
	if err != nil {
		return nil, err
	}
	if err := c.verify(issuers); err != nil {
		return nil, err
	}
	if err := c.indexEntries(entries); err != nil {
		return nil, err
	}
	return c, nil
}

// verify finds the CRL's issuer among issuers by name and checks the
// signature with its key, setting c.Issuer.
func (c *CRL) verify(issuers []*x509.Certificate) error {
	var lastErr error
	for _, iss := range issuers {
		if iss == nil || !bytes.Equal(iss.RawSubject, c.RawIssuer) {
			continue
		}
		if err := checkSignature(c, iss); err != nil {
			lastErr = err
			continue
		}
		c.Issuer = iss
		return nil
	}
	if lastErr != nil {
		return lastErr
	}
	return newErr(ErrNoIssuer, "CRL issuer "+issuerString(c.RawIssuer), nil)
}

// checkSignature verifies c's signature with iss, which must be allowed
// to sign CRLs.
func checkSignature(c *CRL, iss *x509.Certificate) error {
	if iss.KeyUsage != 0 && iss.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return newErr(ErrSignature, "issuer "+iss.Subject.String()+" lacks the cRLSign key usage", nil)
	}
	if err := iss.CheckSignature(c.SignatureAlgorithm, c.RawTBS, c.Signature); err != nil {
		return newErr(ErrSignature, "with the key of "+iss.Subject.String(), err)
	}
	return nil
}

// issuerString renders a raw Name for an error message.
func issuerString(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return "(malformed name)"
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdns)
	return n.String()
}

// Policy is how CRLs are applied at a time: the tolerances of the time
// checks, and which certificates of a chain are checked.
type Policy struct {
	// Skew is how far in the future a CRL's thisUpdate may be (the CA's
	// clock ahead of ours) before the CRL counts as not yet valid.
	Skew time.Duration
	// Grace is how long past its nextUpdate a CRL still counts as valid.
	// Zero means none, as in Node (OpenSSL).
	Grace time.Duration
	// LeafOnly checks the leaf alone (OpenSSL's X509_V_FLAG_CRL_CHECK
	// without CRL_CHECK_ALL). By default every certificate of the chain
	// is checked, the trust anchor too, as Node does.
	LeafOnly bool
	// Anchors gives the way up from a trust anchor that is not
	// self-issued to its root (Check). Nil knows none: such an anchor
	// fails with ErrNoCRL, unless LeafOnly leaves it unchecked.
	Anchors *Anchors
}

// Usable returns nil if c may be used at now, else an error wrapping
// ErrNotYetValid or ErrExpired.
func (p Policy) Usable(c *CRL, now time.Time) error {
	if c.ThisUpdate.After(now.Add(p.Skew)) {
		return newErr(ErrNotYetValid, "thisUpdate "+c.ThisUpdate.UTC().Format(time.RFC3339), nil)
	}
	if p.expired(c, now) {
		return newErr(ErrExpired, "nextUpdate "+c.NextUpdate.UTC().Format(time.RFC3339), nil)
	}
	return nil
}

func (p Policy) expired(c *CRL, now time.Time) bool {
	return !c.NextUpdate.IsZero() && now.After(c.NextUpdate.Add(p.Grace))
}
