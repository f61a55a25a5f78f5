package crl

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/tlsemit/tlsemit/internal/testpki"
)

// TestDecode: DER as is; PEM CRL blocks (several, among other blocks,
// with CRLF, with lines of any length, large enough for the parallel
// decoder) as encoding/pem reads them; headers and garbage refused.
func TestDecode(t *testing.T) {
	ca := testpki.NewCA(t, "pem CA")
	der := ca.CRL(t, testpki.CRLOptions{})
	if out, err := Decode(der); err != nil || len(out) != 1 || !bytes.Equal(out[0], der) {
		t.Fatalf("DER: %v", err)
	}
	big := make([]byte, 3<<20+7) // odd size: a padded last line
	rand.Read(big)
	cert := testpki.CertPEM(ca.DER)
	for name, body := range map[string][]byte{
		"one":        testpki.CRLPEM(der),
		"large":      pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: big}),
		"large CRLF": []byte(strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: big})), "\n", "\r\n")),
		"76 columns": []byte("-----BEGIN X509 CRL-----\n" + wrap(base64.StdEncoding.EncodeToString(big), 76) + "-----END X509 CRL-----\n"),
		"65 columns": []byte("-----BEGIN X509 CRL-----\n" + wrap(base64.StdEncoding.EncodeToString(der), 65) + "-----END X509 CRL-----\n"),
		"mixed":      append(append(append([]byte{}, cert...), testpki.CRLPEM(der)...), testpki.CRLPEM(big[:1000])...),
	} {
		var want [][]byte
		for rest := body; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "X509 CRL" {
				want = append(want, b.Bytes)
			}
		}
		got, err := Decode(body)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %d blocks, want %d: %v", name, len(got), len(want), err)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: block %d differs from encoding/pem's", name, i)
			}
		}
	}
	for name, body := range map[string][]byte{
		"garbage":    []byte("hello"),
		"certs only": cert,
		"headers":    []byte("-----BEGIN X509 CRL-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END X509 CRL-----\n"),
		"no END":     []byte("-----BEGIN X509 CRL-----\nAAAA\n"),
		"bad base64": []byte("-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n"),
	} {
		if _, err := Decode(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A corrupt line in a large block is found by the parallel decoder.
	large := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: big})
	large[len(large)/2] = '!'
	if _, err := Decode(large); !errors.Is(err, ErrMalformed) {
		t.Errorf("corrupt large block: %v", err)
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s + "\n")
	return b.String()
}
