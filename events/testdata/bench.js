// bench.js measures Node's EventEmitter in the shapes of events/bench_test.go
// and prints one line per shape, in Go's benchmark format:
//   BenchmarkNodeEmit1Listener0Args <ns/op>
// Usage: node bench.js [iterations]
'use strict';
const { EventEmitter } = require('events');

const N = Number(process.argv[2]) || 5e6;
let sink = 0;
const nop = (...args) => { sink += args.length; };

function time(name, setup, body) {
  const e = new EventEmitter();
  setup(e);
  body(e, N / 10); // warm up the JIT
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    body(e, N);
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (ns < best) best = ns;
  }
  console.log(`BenchmarkNode${name} ${best.toFixed(2)}`);
}

time('Emit0Listeners', (e) => e.on('other', nop), (e, n) => { for (let i = 0; i < n; i++) e.emit('data'); });
time('Emit1Listener0Args', (e) => e.on('data', nop), (e, n) => { for (let i = 0; i < n; i++) e.emit('data'); });
time('Emit1Listener2Args', (e) => e.on('data', nop), (e, n) => { for (let i = 0; i < n; i++) e.emit('data', 1, 'x'); });
time('Emit10Listeners', (e) => { for (let i = 0; i < 10; i++) e.on('data', nop); }, (e, n) => { for (let i = 0; i < n; i++) e.emit('data', 1, 'x'); });
time('OnOff', (e) => e.on('data', nop), (e, n) => {
  for (let i = 0; i < n; i++) { const f = () => {}; e.on('data', f); e.removeListener('data', f); }
});
if (sink < 0) console.log(sink);
