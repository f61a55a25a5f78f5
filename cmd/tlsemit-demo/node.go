package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"
)

// nodeScript connects with Node's tls.connect, asks for the certificate
// status and prints what it got: "<protocol> <authorized> <staple base64|->".
const nodeScript = `
const tls = require('tls'), fs = require('fs');
const [port, ca] = process.argv.slice(1);
let staple = null;
const s = tls.connect({ host: '127.0.0.1', port: +port, servername: 'localhost', ca: fs.readFileSync(ca), requestOCSP: true });
s.on('OCSPResponse', (r) => { staple = r; });
s.on('secureConnect', () => {
  console.log(s.getProtocol() + ' ' + s.authorized + ' ' + (staple && staple.length ? staple.toString('base64') : '-'));
  s.end();
});
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`

func (d *demo) nodeClient(ctx context.Context) error {
	node, err := exec.LookPath("node")
	if err != nil {
		d.tr.log("client", "node is not installed: skipping Node's tls.connect")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	port := fmt.Sprint(d.srv.Addr().(*net.TCPAddr).Port)
	out, err := exec.CommandContext(ctx, node, "-e", nodeScript, port, d.caPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("node client: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return fmt.Errorf("node client printed %q", out)
	}
	var raw []byte
	if f[2] != "-" {
		if raw, err = base64.StdEncoding.DecodeString(f[2]); err != nil {
			return err
		}
	}
	var o outcome
	d.report("node tls.connect (authorized "+f[1]+")", f[0], false, raw, &o)
	if f[1] != "true" {
		return fmt.Errorf("node did not authorize the server")
	}
	return d.expect(o, 0)
}
