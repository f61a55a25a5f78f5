package fleet_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsemit/tlsemit/fleet"
	"github.com/tlsemit/tlsemit/tlsserver"
)

// Two members of a fleet behind a load balancer: a client that got its
// session ticket from one resumes on the other. In production each member
// is a process of its own with the same Secret; here both run in one.
func Example() {
	// REDIS_ADDR is where your Redis is (the test runs a redis-server there).
	addr := cmp.Or(os.Getenv("REDIS_ADDR"), "localhost:6379")
	secret := []byte("a 32-byte secret from your vault") // the same on every member
	cert, roots := throwawayPKI()                        // your key and certificate chain

	member := func() (*tlsserver.Server, func()) {
		rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		fl, err := fleet.New(fleet.Options{Redis: rdb, Secret: secret})
		if err != nil {
			panic(err)
		}
		srv, err := tlsserver.New(tlsserver.Options{Certificates: []tls.Certificate{cert}})
		if err != nil {
			panic(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := fl.TicketKeys(ctx, srv); err != nil { // the fleet's rotating ticket keys
			panic(err)
		}
		srv.OnSecureConnection(func(c *tls.Conn) {
			c.Write([]byte("hello"))
			c.Close()
		})
		if err := srv.Listen(context.Background(), "tcp", "127.0.0.1:0"); err != nil {
			panic(err)
		}
		return srv, func() { srv.Close(); fl.Close(); rdb.Close() }
	}
	a, stopA := member()
	defer stopA()
	b, stopB := member()
	defer stopB()

	client := &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	for _, srv := range []*tlsserver.Server{a, b} {
		conn, err := tls.Dial("tcp", srv.Addr().String(), client)
		if err != nil {
			panic(err)
		}
		buf := make([]byte, 5)
		conn.Read(buf) // also takes in the session ticket
		fmt.Printf("%s, resumed: %v\n", buf, conn.ConnectionState().DidResume)
		conn.Close()
	}
	// Output:
	// hello, resumed: false
	// hello, resumed: true
}

// throwawayPKI makes what a deployment gets from its CA, for the example: a
// CA (in the pool the clients trust) and a certificate for localhost signed
// by it, served with the CA in its chain.
func throwawayPKI() (tls.Certificate, *x509.CertPool) {
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	sign := func(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		return c
	}
	now := time.Now()
	caKey, key := newKey(), newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ca := sign(caTmpl, caTmpl, caKey, caKey)
	leaf := sign(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, key, caKey)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf}, roots
}
