package crl

import (
	"crypto/x509"
	"runtime"
	"testing"

	"github.com/tlsemit/tlsemit/internal/crltest"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// largeN is the size of the CRL the load and lookup benchmarks use: a
// 1,000,000-entry CRL is 34 MB, the size of the largest public ones.
const largeN = 1_000_000

// heapNow is the live heap after a full collection.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCRLLoad loads and verifies a 1,000,000-entry CRL (made by
// crltest.LargeCRL, cached under the temporary directory): from DER
// (Load), from PEM (Decode then Load: what Node's crl option takes), and
// with crypto/x509 (ParseRevocationList and CheckSignatureFrom, the slow
// baseline). Each reports heap-kept/DER: the heap the loaded CRL keeps
// (its DER included) over the DER's size, measured once.
func BenchmarkCRLLoad(b *testing.B) {
	l := crltest.LargeCRL(b, largeN)
	pemBytes := testpki.CRLPEM(l.DER)
	size := float64(len(l.DER))
	b.Run("der", func(b *testing.B) {
		before := heapNow()
		c, err := Load(l.DER, l.CA.Cert)
		if err != nil || c.Len() != largeN {
			b.Fatal(err)
		}
		kept := (size + float64(heapNow()-before)) / size
		runtime.KeepAlive(c)
		c = nil
		for b.Loop() {
			if _, err := Load(l.DER, l.CA.Cert); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(kept, "heap-kept/DER") // after the loop, which clears metrics reported before it
	})
	b.Run("pem", func(b *testing.B) {
		before := heapNow()
		ders, err := Decode(pemBytes)
		if err != nil {
			b.Fatal(err)
		}
		c, err := Load(ders[0], l.CA.Cert)
		if err != nil {
			b.Fatal(err)
		}
		ders = nil
		kept := float64(heapNow()-before) / size // the PEM can go; the DER decoded from it is kept
		runtime.KeepAlive(c)
		c = nil
		for b.Loop() {
			ders, err := Decode(pemBytes)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Load(ders[0], l.CA.Cert); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(kept, "heap-kept/DER")
	})
	b.Run("x509", func(b *testing.B) {
		before := heapNow()
		rl, err := x509.ParseRevocationList(l.DER)
		if err != nil {
			b.Fatal(err)
		}
		kept := (size + float64(heapNow()-before)) / size
		runtime.KeepAlive(rl)
		rl = nil
		for b.Loop() {
			rl, err := x509.ParseRevocationList(l.DER)
			if err != nil {
				b.Fatal(err)
			}
			if err := rl.CheckSignatureFrom(l.CA.Cert); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(kept, "heap-kept/DER")
	})
}

// BenchmarkCRLLookup looks serials up in the 1,000,000-entry CRL: one
// serial again and again (its slot in cache: the cost of the lookup
// itself), and 65,536 serials in turn, half listed, half not (most slots
// out of cache: what a server with many clients sees).
func BenchmarkCRLLookup(b *testing.B) {
	l := crltest.LargeCRL(b, largeN)
	c, err := Load(l.DER, l.CA.Cert)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hot", func(b *testing.B) {
		s := l.Serial(777)
		for b.Loop() {
			if !c.Revoked(s) {
				b.Fatal("not found")
			}
		}
	})
	b.Run("spread", func(b *testing.B) {
		const m = 1 << 16
		serials := make([][]byte, m)
		for i := range m {
			if i%2 == 0 {
				serials[i] = l.Serial(i * 15)
			} else {
				serials[i] = l.Absent(i * 15)
			}
		}
		i := 0
		for b.Loop() {
			if c.Revoked(serials[i&(m-1)]) != (i%2 == 0) {
				b.Fatal("wrong answer")
			}
			i++
		}
	})
}
