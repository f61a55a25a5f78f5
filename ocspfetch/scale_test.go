package ocspfetch

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// manyLeaves issues n certificates of ca naming ocspURL (none if empty),
// sharing one key so that thousands take a moment.
func manyLeaves(tb testing.TB, ca *testpki.CA, n int, ocspURL string) [][]byte {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	out := make([][]byte, n)
	for i := range out {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(1_000_000 + i)),
			Subject:      pkix.Name{CommonName: "many"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			DNSNames:     []string{"many.example"},
		}
		if ocspURL != "" {
			tmpl.OCSPServer = []string{ocspURL}
		}
		if out[i], err = x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// TestFirstRequestsLinear: the memory the first request for a new
// certificate allocates does not grow with the number of certificates
// already known (copying the whole map per insert made it quadratic).
func TestFirstRequestsLinear(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	const small, large = 250, 4000
	certs := manyLeaves(t, ca, large, "")
	perCert := func(n int) float64 {
		f, _ := newFetcher(t, Options{})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, c := range certs[:n] {
			f.OCSPRequest(c, ca.DER, func(error, []byte) {})
		}
		runtime.ReadMemStats(&after)
		if got := f.Stats().Certificates; got != n {
			t.Fatalf("%d certificates tracked, want %d", got, n)
		}
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
	}
	s, l := perCert(small), perCert(large)
	t.Logf("allocated per first request: %.0f B at %d certificates, %.0f B at %d", s, small, l, large)
	if l > 2*s {
		t.Fatalf("a first request allocates %.0f B among %d certificates, %.0f B among %d: it grows with the count", l, large, s, small)
	}
}
