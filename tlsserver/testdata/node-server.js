// Reference server for tlsserver's differential tests: Node's own tls.Server
// running one scenario and printing what happens as JSON lines on stdout.
//
//   node node-server.js '<scenario JSON>'
//
// It prints {"ev":"listening","port":N} first, then one line per server
// event. A line "settle" on stdin asks it to wait until no connection is
// left (or 3 s pass) and print {"ev":"settled"}; end of stdin stops it.
'use strict';
const tls = require('tls');
const fs = require('fs');
const crypto = require('crypto');
const readline = require('readline');

const sc = JSON.parse(process.argv[2]);
const read = (p) => fs.readFileSync(p);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const digest = (b) => (b ? crypto.createHash('sha256').update(b).digest('hex').slice(0, 16) : null);
const summary = (err) => (err && err.code) || ('user:' + (err && err.message));

const opts = { key: read(sc.key), cert: read(sc.cert) };
if (sc.ca) opts.ca = sc.ca.map(read);
if (sc.handshakeTimeoutMs) opts.handshakeTimeout = sc.handshakeTimeoutMs;
if (sc.alpn) opts.ALPNProtocols = sc.alpn;
if (sc.requestCert) {
  opts.requestCert = true;
  opts.rejectUnauthorized = !!sc.rejectUnauthorized;
  opts.ca = (opts.ca || []).concat(sc.clientCA.map(read));
}
if (sc.crl) opts.crl = sc.crl.map(read);
const server = tls.createServer(opts);
for (const c of sc.contexts || []) {
  const o = { key: read(c.key), cert: read(c.cert) };
  if (c.ca) o.ca = c.ca.map(read);
  if (c.crl) o.crl = c.crl.map(read);
  server.addContext(c.host, o);
}

const staple = Buffer.from(sc.staple || 'staple', 'utf8');
let pendingAfter = null; // the callback a "twice-after" listener calls again
function ocspListener(index) {
  return (cert, issuer, cb) => {
    out({ ev: 'OCSPRequest', listener: index, cert: digest(cert), issuer: digest(issuer) });
    if (index > 0) return; // only the first listener answers
    switch (sc.ocsp) {
      case 'bytes': cb(null, staple); break;
      case 'async-bytes': setTimeout(() => cb(null, staple), 20); break;
      case 'null': cb(null, null); break;
      case 'empty': cb(null, Buffer.alloc(0)); break;
      case 'error': cb(new Error('boom')); break;
      case 'twice-before': cb(null, staple); cb(null, staple); break;
      case 'twice-after': cb(null, staple); pendingAfter = cb; break;
      case 'close-then-bytes': server.close(); setTimeout(() => cb(null, staple), 20); break;
      case 'never': break;
      default: throw new Error('unknown ocsp mode ' + sc.ocsp);
    }
  };
}
const listeners = [];
const addListeners = () => {
  for (let i = 0; i < (sc.listeners || 1); i++) {
    const fn = ocspListener(i);
    listeners.push(fn);
    server.on('OCSPRequest', fn);
  }
};
if (!sc.late) addListeners();

if (sc.sessionStore) {
  const store = new Map();
  server.on('newSession', (id, data, done) => { out({ ev: 'newSession' }); store.set(id.toString('hex'), data); done(); });
  server.on('resumeSession', (id, cb) => { out({ ev: 'resumeSession' }); cb(null, store.get(id.toString('hex')) || null); });
}
if (sc.keylog) server.on('keylog', (line) => out({ ev: 'keylog', label: line.toString('latin1').split(' ')[0] }));

let connections = 0;
let addedInConnection = false;
server.on('connection', (sock) => {
  connections++;
  sock.on('close', () => connections--);
  out({ ev: 'connection' });
  if (sc.late && listeners.length === 0) addListeners();
  if (sc.removeInConnection) for (const fn of listeners.splice(0)) server.removeListener('OCSPRequest', fn);
  if (sc.addInConnection && !addedInConnection) {
    addedInConnection = true;
    server.on('OCSPRequest', ocspListener(listeners.length));
  }
});
server.on('secureConnection', (sock) => {
  out({
    ev: 'secureConnection', protocol: sock.getProtocol(), reused: sock.isSessionReused(),
    alpn: sock.alpnProtocol || undefined, authError: (sc.requestCert && sock.authorizationError) || undefined,
    authorized: (sc.requestCert && sock.authorized) || undefined,
  });
  sock.on('error', (err) => out({ ev: 'socketError', code: summary(err) }));
  if (pendingAfter) {
    const cb = pendingAfter;
    pendingAfter = null;
    cb(null, staple);
  }
  sock.on('end', () => sock.end()); // the client closes first, after it has its session
});
server.on('tlsClientError', (err) => out({ ev: 'tlsClientError', code: summary(err) }));
server.on('close', () => out({ ev: 'close' }));

server.listen(0, '127.0.0.1', () => out({ ev: 'listening', port: server.address().port }));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() !== 'settle') return;
  const deadline = Date.now() + 3000;
  const poll = () => {
    if (connections === 0 || Date.now() > deadline) return out({ ev: 'settled' });
    setTimeout(poll, 10);
  };
  setTimeout(poll, 50);
});
rl.on('close', () => process.exit(0));
