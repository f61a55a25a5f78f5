package tlsserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"
)

// The record round-trips; anything truncated, padded or foreign is no
// record (a full handshake), never a panic.
func TestSessionRecordEncoding(t *testing.T) {
	r := &sessionRecord{created: 1700000000, version: tls.VersionTLS12, suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		emsKnown: true, ems: true, peerCerts: true, leafNotAfter: 1800000000,
		chains: []chainFacts{{notBefore: 1, notAfter: 2, root: []byte("root DER")}}}
	b := r.encode()
	got := findRecord([][]byte{[]byte("someone else's entry"), b})
	if got == nil || got.created != r.created || got.suite != r.suite || !got.ems || len(got.chains) != 1 ||
		!bytes.Equal(got.chains[0].root, r.chains[0].root) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range len(b) {
		if findRecord([][]byte{b[:i]}) != nil {
			t.Fatalf("a record truncated to %d bytes parsed", i)
		}
	}
	if findRecord([][]byte{append(bytes.Clone(b), 0)}) != nil {
		t.Fatal("a record with trailing bytes parsed")
	}
	if findRecord(nil) != nil || findRecord([][]byte{[]byte("tlsemit/session/3\x00")}) != nil {
		t.Fatal("a foreign entry parsed")
	}
	// Version 1 kept whole seconds where version 2 keeps nanoseconds: a
	// record of the other version is no record.
	v1 := append([]byte("tlsemit/session/1"), b[len(recordMagic):]...)
	if findRecord([][]byte{v1}) != nil {
		t.Fatal("a version-1 record parsed")
	}
}

// A handshake predicted to resume that crypto/tls made a full one is
// reported loudly: through 'error', else the logger.
func TestMispredictionReported(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srvConn := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	go tls.Client(b, &tls.Config{InsecureSkipVerify: true}).Handshake()
	if err := srvConn.Handshake(); err != nil { // a full handshake
		t.Fatal(err)
	}

	var logged bytes.Buffer
	s, err := New(Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &serverConn{Conn: a, s: s, tls: srvConn, hs: handshakeState{predicted: true}}
	c.checkPrediction(false)
	if !bytes.Contains(logged.Bytes(), []byte(ErrResumptionMispredicted.Code)) {
		t.Fatalf("not logged: %q", logged.String())
	}
	errs := make(chan error, 1)
	s.OnError(func(err error) { errs <- err })
	c.checkPrediction(false)
	if err := <-errs; !errors.Is(err, ErrResumptionMispredicted) {
		t.Fatalf("'error' %v", err)
	}
	c.hs.predicted = false
	c.checkPrediction(false) // no prediction, nothing to report
	select {
	case err := <-errs:
		t.Fatalf("reported %v without a prediction", err)
	default:
	}
}
