// Node's side of the CRL rows of benchtable: tls.createSecureContext({ca,
// crl}) on the same 1,000,000-entry CRL (PEM, as Node takes it) the Go
// benchmarks load. Prints the resident memory one context keeps, and the
// median time of the runs that follow, in ns.
'use strict';
const tls = require('tls');
const fs = require('fs');
const [ca, crl, runs] = [fs.readFileSync(process.argv[2]), fs.readFileSync(process.argv[3]), Number(process.argv[4] || 5)];
const rss0 = process.memoryUsage().rss;
let kept = tls.createSecureContext({ca, crl});
process.stdout.write('BenchmarkNodeCreateSecureContextCRL-rss-MB ' + ((process.memoryUsage().rss - rss0) / 1e6).toFixed(1) + '\n');
kept = null;
const times = [];
for (let i = 0; i < runs; i++) {
  if (global.gc) global.gc();
  const t0 = process.hrtime.bigint();
  tls.createSecureContext({ca, crl});
  times.push(Number(process.hrtime.bigint() - t0));
}
times.sort((a, b) => a - b);
process.stdout.write('BenchmarkNodeCreateSecureContextCRL ' + times[times.length >> 1] + '\n');
