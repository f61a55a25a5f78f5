// Node's tls.Server with the same 'OCSPRequest' listener as the Go servers
// of benchtable: the staple is answered from memory.
'use strict';
const tls = require('tls');
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const staple = fs.readFileSync(path.join(dir, 'staple.der'));
const server = tls.createServer({
  key: fs.readFileSync(path.join(dir, 'leaf.key')),
  cert: fs.readFileSync(path.join(dir, 'leaf.pem')),
});
server.on('OCSPRequest', (cert, issuer, cb) => cb(null, staple));
server.on('secureConnection', (sock) => sock.destroy());
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\n'));
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
