package testpki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"os"
	"testing"

	"golang.org/x/crypto/ocsp"
)

func TestChainVerifies(t *testing.T) {
	root := NewCA(t, "root")
	inter := root.Intermediate(t, "inter")
	leaf := inter.Issue(t, LeafOptions{OCSPServer: []string{"http://127.0.0.1:1/"}, MustStaple: true})
	inters := x509.NewCertPool()
	inters.AddCert(inter.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: root.Pool(), Intermediates: inters}); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if got := leaf.Cert.OCSPServer; len(got) != 1 || got[0] != "http://127.0.0.1:1/" {
		t.Fatalf("OCSPServer = %q", got)
	}
	found := false
	for _, e := range leaf.Cert.Extensions {
		if e.Id.Equal(OIDMustStaple) {
			var feats []int
			if _, err := asn1.Unmarshal(e.Value, &feats); err != nil || len(feats) != 1 || feats[0] != 5 {
				t.Fatalf("must-staple value %x: %v %v", e.Value, feats, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no must-staple extension")
	}
	if c := leaf.TLSCertificate(true); len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], inter.DER) {
		t.Fatalf("chain of %d", len(c.Certificate))
	}
	rootLeaf := root.Issue(t, LeafOptions{})
	if c := rootLeaf.TLSCertificate(true); len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], root.DER) {
		t.Fatal("a root's leaf must be served with the root as issuer")
	}
}

func TestOCSPSignerAndResponse(t *testing.T) {
	ca := NewCA(t, "ca")
	leaf := ca.Issue(t, LeafOptions{})
	signer := ca.OCSPSigner(t, true)
	if len(signer.Cert.ExtKeyUsage) != 1 || signer.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
		t.Fatal("signer lacks OCSPSigning")
	}
	if noEKU := ca.OCSPSigner(t, false); len(noEKU.Cert.ExtKeyUsage) != 1 || noEKU.Cert.ExtKeyUsage[0] == x509.ExtKeyUsageOCSPSigning {
		t.Fatal("signer without EKU has it")
	}
	der := ca.OCSPResponse(t, leaf.Cert, ResponseOptions{Status: ocsp.Revoked, Signer: signer})
	r, err := ocsp.ParseResponseForCert(der, leaf.Cert, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != ocsp.Revoked || r.Certificate == nil || r.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestWritePEM(t *testing.T) {
	ca := NewCA(t, "ca")
	leaf := ca.Issue(t, LeafOptions{})
	dir := t.TempDir()
	c, k := leaf.WritePEM(dir)
	chain := leaf.WriteChainPEM(dir)
	cc, _ := ca.WritePEM(dir)
	for _, p := range []string{c, k, chain, cc} {
		st, err := os.Stat(p)
		if err != nil || st.Size() == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, st, err)
		}
	}
}
