package crltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// OpenSSLCA is a testpki CA run by the real `openssl ca`: certificates
// are revoked with `openssl ca -revoke` and CRLs made with
// `openssl ca -gencrl`. openssl ca refuses to sign with a key that does
// not match the CA certificate: forge such CRLs in Go (Build).
type OpenSSLCA struct {
	CA  *testpki.CA
	dir string
	t   testing.TB
}

// NewOpenSSLCA sets up an openssl ca directory for ca. With v1 it keeps
// no CRL number and no CRL extensions, so that openssl makes v1 CRLs.
func NewOpenSSLCA(t testing.TB, ca *testpki.CA, v1 bool) *OpenSSLCA {
	t.Helper()
	testenv.RequireTool(t, "openssl")
	dir := t.TempDir()
	cert, key := ca.WritePEM(dir)
	ext := "crl_extensions = crl_ext\n"
	if v1 {
		ext = ""
	} else {
		mustWriteFile(t, filepath.Join(dir, "crlnumber"), "01\n")
	}
	cnf := fmt.Sprintf(`[ ca ]
default_ca = ca_default
[ ca_default ]
dir = %s
database = $dir/index.txt
certificate = %s
private_key = %s
new_certs_dir = $dir
default_md = sha256
default_crl_days = 1
%s%s
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`, dir, cert, key, map[bool]string{false: "crlnumber = $dir/crlnumber\n", true: ""}[v1], ext)
	mustWriteFile(t, filepath.Join(dir, "openssl.cnf"), cnf)
	mustWriteFile(t, filepath.Join(dir, "index.txt"), "")
	mustWriteFile(t, filepath.Join(dir, "index.txt.attr"), "unique_subject = no\n")
	return &OpenSSLCA{CA: ca, dir: dir, t: t}
}

// Revoke revokes leaf with `openssl ca -revoke` (reason unspecified).
func (o *OpenSSLCA) Revoke(leaf *testpki.Leaf) {
	o.t.Helper()
	p := filepath.Join(o.dir, fmt.Sprintf("revoke-%s.pem", leaf.SerialHex()))
	mustWriteFile(o.t, p, string(testpki.CertPEM(leaf.DER)))
	o.run("ca", "-revoke", p)
}

// GenCRL makes a CRL with `openssl ca -gencrl`, with the given
// lastUpdate (thisUpdate) and nextUpdate (zero: now and a day later), and
// returns it as DER.
func (o *OpenSSLCA) GenCRL(last, next time.Time) []byte {
	o.t.Helper()
	pemPath := filepath.Join(o.dir, "crl.pem")
	args := []string{"ca", "-gencrl", "-out", pemPath}
	if !last.IsZero() {
		args = append(args, "-crl_lastupdate", last.UTC().Format("060102150405Z"))
	}
	if !next.IsZero() {
		args = append(args, "-crl_nextupdate", next.UTC().Format("060102150405Z"))
	}
	o.run(args...)
	derPath := filepath.Join(o.dir, "crl.der")
	o.run("crl", "-in", pemPath, "-outform", "DER", "-out", derPath)
	der, err := os.ReadFile(derPath)
	if err != nil {
		o.t.Fatal(err)
	}
	return der
}

func (o *OpenSSLCA) run(args ...string) {
	o.t.Helper()
	if args[0] == "ca" {
		args = append(args, "-config", filepath.Join(o.dir, "openssl.cnf"), "-batch")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		o.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func mustWriteFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
