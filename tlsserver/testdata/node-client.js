// Client for tlsserver's tests: Node's tls.connect, run against Node's
// tls.Server and against tlsserver alike. Prints one JSON line per
// connection with what the client saw.
//
//   node node-client.js '<options JSON>'
//
// Options: port, servername, ca (PEM paths; none: no verification),
// requestOCSP, maxVersion, connections, resume (reuse the previous
// connection's session), timeoutMs, each (per connection, tls.connect
// options merged in, such as ciphers or secureOptions).
'use strict';
const tls = require('tls');
const fs = require('fs');

const o = JSON.parse(process.argv[2]);
const out = (x) => process.stdout.write(JSON.stringify(x) + '\n');

function connectOnce(session, extra) {
  return new Promise((resolve) => {
    const res = { ok: false, ocsp: 'no-event', reused: false, err: null };
    let newSession = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ res, session: newSession });
    };
    const opts = {
      host: '127.0.0.1',
      port: o.port,
      servername: o.servername || 'localhost',
      requestOCSP: !!o.requestOCSP,
      maxVersion: o.maxVersion || 'TLSv1.3',
      rejectUnauthorized: !!o.ca,
    };
    if (o.ca) opts.ca = o.ca.map((p) => fs.readFileSync(p));
    if (session) opts.session = session;
    Object.assign(opts, extra || {});
    const sock = tls.connect(opts);
    const timer = setTimeout(() => { res.err = 'timeout'; sock.destroy(); finish(); }, o.timeoutMs || 3000);
    sock.on('OCSPResponse', (resp) => { res.ocsp = resp && resp.length ? resp.toString('utf8') : null; });
    // TLS 1.3 tickets arrive after the handshake: with resume, wait for one.
    let gotSession, wantSession = new Promise((r) => { gotSession = r; });
    sock.on('session', (s) => { newSession = s; gotSession(); });
    sock.on('secureConnect', () => {
      res.ok = true;
      res.reused = sock.isSessionReused();
      res.protocol = sock.getProtocol();
      if (sock.alpnProtocol) res.alpn = sock.alpnProtocol;
      const wait = o.resume ? Promise.race([wantSession, new Promise((r) => setTimeout(r, 1000))]) : Promise.resolve();
      wait.then(() => sock.end());
    });
    sock.on('data', () => {});
    sock.on('error', (err) => { if (!res.err) res.err = err.code || err.message; });
    sock.on('close', finish);
  });
}

(async () => {
  let session = null;
  for (let i = 0; i < (o.connections || 1); i++) {
    const { res, session: s } = await connectOnce(o.resume ? session : null, (o.each || [])[i]);
    if (s) session = s;
    out(res);
  }
})();
