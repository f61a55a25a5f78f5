package ocsptest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlsemit/tlsemit/internal/testenv"
	"github.com/tlsemit/tlsemit/internal/testpki"
)

// Options configure Start.
type Options struct {
	// Signer signs the responses as a delegated responder. Nil means the CA
	// signs them with its own key.
	Signer *testpki.Leaf
	// NMin is passed as -nmin: the minutes until nextUpdate. Zero means the
	// responses carry no nextUpdate at all.
	NMin int
	// Port is the port inside the namespace; zero picks 8888 in a namespace
	// and a free port on plain loopback.
	Port int
}

// Responder is a running `openssl ocsp` process.
type Responder struct {
	// URL is the responder's address as a certificate's AIA should carry
	// it: http://127.0.0.1:P/.
	URL string
	// Client reaches URL (inside the namespace when there is one). It never
	// reuses connections.
	Client *http.Client
	// Isolated reports whether the responder runs in its own network
	// namespace.
	Isolated bool

	t     testing.TB
	ca    *testpki.CA
	opts  Options
	dir   string
	port  int
	args  []string
	dials atomic.Int64

	mu     sync.Mutex
	index  []entry
	cmd    *exec.Cmd
	out    *bytes.Buffer
	nsPath string // /proc/PID/ns/net of the running responder
	waited chan struct{}
}

type entry struct {
	leaf    *testpki.Leaf
	revoked time.Time
}

// Required reports, through t, that tool is missing: a failure when CI=true,
// a skip otherwise.
func Required(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testenv.RequireTool(t, tool)
	}
}

// Start runs `openssl ocsp` answering for certificates issued by ca; leaves
// are listed as valid (V) in its index, any other certificate of ca gets
// Unknown. The process is killed on t.Cleanup.
func Start(t testing.TB, ca *testpki.CA, opts Options, leaves ...*testpki.Leaf) *Responder {
	t.Helper()
	Required(t, "openssl")
	r := &Responder{t: t, ca: ca, opts: opts, dir: t.TempDir()}
	for _, l := range leaves {
		r.index = append(r.index, entry{leaf: l})
	}
	r.Isolated = namespacesWork()
	if !r.Isolated {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ocsptest: `unshare -rn` is refused on this machine; CI=true requires namespace support")
		}
		t.Log("ocsptest: `unshare -rn` refused; falling back to the responder on plain loopback (it binds every interface)")
	}
	r.port = opts.Port
	if r.port == 0 {
		r.port = 8888
		if !r.Isolated {
			r.port = freePort(t)
		}
	}
	r.URL = fmt.Sprintf("http://127.0.0.1:%d/", r.port)
	r.Client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       r.dial,
		},
	}
	signerCert, signerKey := ca.WritePEM(r.dir)
	if opts.Signer != nil {
		signerCert, signerKey = opts.Signer.WritePEM(r.dir)
	}
	caPath, _ := ca.WritePEM(r.dir)
	r.writeIndex()
	r.args = []string{"ocsp", "-index", filepath.Join(r.dir, "index.txt"), "-port", strconv.Itoa(r.port),
		"-rsigner", signerCert, "-rkey", signerKey, "-CA", caPath, "-ignore_err"}
	if opts.NMin > 0 {
		r.args = append(r.args, "-nmin", strconv.Itoa(opts.NMin))
	}
	t.Cleanup(r.Stop)
	r.start()
	return r
}

// Dials returns how many connections Client has opened to the responder:
// with keep-alives off, the number of HTTP requests it was sent.
func (r *Responder) Dials() int64 { return r.dials.Load() }

// Add lists leaves as valid (V) in the index and restarts the responder,
// for certificates issued after Start (they need its URL in their AIA).
func (r *Responder) Add(leaves ...*testpki.Leaf) {
	r.t.Helper()
	r.mu.Lock()
	for _, l := range leaves {
		r.index = append(r.index, entry{leaf: l})
	}
	r.writeIndex()
	r.mu.Unlock()
	r.Restart()
}

// Revoke marks leaf revoked (now, minus a second so it is in the past for
// any reasonable clock) and restarts the responder, which does not re-read
// its index.
func (r *Responder) Revoke(leaf *testpki.Leaf) {
	r.t.Helper()
	r.mu.Lock()
	at := time.Now().Add(-time.Second).UTC()
	found := false
	for i := range r.index {
		if r.index[i].leaf == leaf {
			r.index[i].revoked, found = at, true
		}
	}
	if !found {
		r.index = append(r.index, entry{leaf: leaf, revoked: at})
	}
	r.writeIndex()
	r.mu.Unlock()
	r.Restart()
}

// Restart stops the responder and starts it again on the same port, with
// the index as it is now.
func (r *Responder) Restart() {
	r.t.Helper()
	r.kill()
	r.start()
}

// Stop kills the responder and waits for it. It is safe to call twice; Start
// registers it with t.Cleanup.
func (r *Responder) Stop() {
	r.kill()
}

// Output returns what the responder printed so far (for failure messages).
func (r *Responder) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		return ""
	}
	return r.out.String()
}

// writeIndex writes index.txt in openssl ca's format. Callers hold r.mu or
// own r exclusively.
func (r *Responder) writeIndex() {
	var b strings.Builder
	for _, e := range r.index {
		exp := e.leaf.Cert.NotAfter.UTC().Format("060102150405Z")
		subj := "/CN=" + e.leaf.Cert.Subject.CommonName
		if e.revoked.IsZero() {
			fmt.Fprintf(&b, "V\t%s\t\t%s\tunknown\t%s\n", exp, e.leaf.SerialHex(), subj)
		} else {
			fmt.Fprintf(&b, "R\t%s\t%s\t%s\tunknown\t%s\n", exp, e.revoked.Format("060102150405Z"), e.leaf.SerialHex(), subj)
		}
	}
	p := filepath.Join(r.dir, "index.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		r.t.Fatalf("ocsptest: %v", err)
	}
	// openssl wants the attribute file next to the index.
	_ = os.WriteFile(p+".attr", []byte("unique_subject = no\n"), 0o600)
}

func (r *Responder) start() {
	r.t.Helper()
	var cmd *exec.Cmd
	if r.Isolated {
		// exec keeps one PID from unshare to openssl, so /proc/PID/ns/net
		// is the responder's namespace and killing PID kills openssl.
		script := "ip link set lo up && exec openssl " + shellJoin(r.args)
		cmd = exec.Command("unshare", "-rn", "sh", "-c", script)
	} else {
		cmd = exec.Command("openssl", r.args...)
	}
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = testenv.LockedWriter(out, &r.mu), testenv.LockedWriter(out, &r.mu)
	// If the test binary dies, so does the responder: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("ocsptest: starting openssl ocsp: %v", err)
	}
	r.mu.Lock()
	r.cmd, r.out = cmd, out
	r.nsPath = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	r.mu.Unlock()
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	deadline := time.Now().Add(10 * time.Second)
	for !listening(cmd.Process.Pid, r.port) {
		select {
		case <-waited:
			r.t.Fatalf("ocsptest: openssl ocsp exited before listening:\n%s", r.Output())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.kill()
			r.t.Fatalf("ocsptest: openssl ocsp did not listen on port %d within 10s:\n%s", r.port, r.Output())
		}
	}
	r.mu.Lock()
	r.waited = waited
	r.mu.Unlock()
}

func (r *Responder) kill() {
	r.mu.Lock()
	cmd, waited := r.cmd, r.waited
	r.cmd, r.waited = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	if waited != nil {
		<-waited
	}
}

// listening reports whether pid's network namespace has a TCP socket in
// LISTEN state on port, reading the kernel's table instead of dialing.
func listening(pid, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; st 0A is LISTEN.
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				fh.Close()
				return true
			}
		}
		fh.Close()
	}
	return false
}

func (r *Responder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.dials.Add(1)
	if !r.Isolated {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	r.mu.Lock()
	ns := r.nsPath
	r.mu.Unlock()
	return dialInNamespace(ctx, ns, addr)
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

var (
	nsOnce sync.Once
	nsOK   bool
)

// namespacesWork probes once whether `unshare -rn` can make a network
// namespace with a working loopback here.
func namespacesWork() bool {
	nsOnce.Do(func() {
		if _, err := exec.LookPath("unshare"); err != nil || sysSetns < 0 {
			return
		}
		nsOK = exec.Command("unshare", "-rn", "sh", "-c", "ip link set lo up").Run() == nil
	})
	return nsOK
}

func freePort(t testing.TB) int {
	// Listening on :0 and closing is safe here: it is our own socket, not a
	// connection to the responder.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ocsptest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
