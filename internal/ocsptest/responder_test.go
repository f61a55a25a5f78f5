package ocsptest

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ocsp"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func query(t *testing.T, r *Responder, leaf *testpki.Leaf, ca *testpki.CA) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(leaf.Cert, ca.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.Client.Post(r.URL, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("POST: %v\n%s", err, r.Output())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	or, err := ocsp.ParseResponseForCert(body, leaf.Cert, ca.Cert)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return or
}

func TestResponderGoodUnknownRevoked(t *testing.T) {
	ca := testpki.NewCA(t, "ocsptest CA")
	signer := ca.OCSPSigner(t, true)
	leaf := ca.Issue(t, testpki.LeafOptions{})
	stranger := ca.Issue(t, testpki.LeafOptions{})
	r := Start(t, ca, Options{Signer: signer, NMin: 5}, leaf)
	t.Logf("responder at %s, isolated=%v", r.URL, r.Isolated)
	if got := query(t, r, leaf, ca); got.Status != ocsp.Good || got.NextUpdate.IsZero() {
		t.Fatalf("leaf: status %d next %v", got.Status, got.NextUpdate)
	}
	if got := query(t, r, stranger, ca); got.Status != ocsp.Unknown {
		t.Fatalf("stranger: status %d", got.Status)
	}
	r.Revoke(leaf)
	if got := query(t, r, leaf, ca); got.Status != ocsp.Revoked {
		t.Fatalf("after revoke: status %d", got.Status)
	}
	if r.Dials() != 3 {
		t.Fatalf("Dials = %d, want 3", r.Dials())
	}
}

func TestResponderCASignedNoNextUpdate(t *testing.T) {
	ca := testpki.NewCA(t, "ocsptest CA")
	leaf := ca.Issue(t, testpki.LeafOptions{})
	r := Start(t, ca, Options{}, leaf)
	got := query(t, r, leaf, ca)
	if got.Status != ocsp.Good || !got.NextUpdate.IsZero() {
		t.Fatalf("status %d next %v", got.Status, got.NextUpdate)
	}
	// openssl includes the signing certificate, here the CA itself.
	if got.Certificate != nil && !got.Certificate.Equal(ca.Cert) {
		t.Fatalf("signed by %v, want the CA", got.Certificate.Subject)
	}
}
