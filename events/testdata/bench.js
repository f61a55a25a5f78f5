// bench.js measures Node's EventEmitter in the shapes of events/bench_test.go
// and prints one line per shape, in Go's benchmark format:
//   BenchmarkNodeEmit1Listener0Args <ns/op>
//   BenchmarkNodeScaleOnOneEvent/n=100000 <ns/op>
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
time('OnOffOnlyListener', () => {}, (e, n) => {
  for (let i = 0; i < n; i++) { const f = () => {}; e.on('data', f); e.removeListener('data', f); }
});
// The scale shapes: each op starts from a new emitter with no limit (as in
// Go, the warning is not what is measured). Like Go's b.Loop, the figure is
// the mean of as many ops as fit in a second (at least five, after one to
// warm up the JIT), garbage collection included; setup is not timed.
function scale(name, n, setup, body) {
  const names = (prefix) => Array.from({ length: n }, (_, i) => prefix + i);
  const fresh = () => { const e = new EventEmitter(); e.setMaxListeners(0); return e; };
  body(setup({ fresh, names }));
  let total = 0n;
  let ops = 0;
  while (ops < 5 || total < 1000000000n) {
    const state = setup({ fresh, names });
    const t0 = process.hrtime.bigint();
    body(state);
    total += process.hrtime.bigint() - t0;
    ops++;
  }
  console.log(`BenchmarkNode${name}/n=${n} ${(Number(total) / ops).toFixed(0)}`);
}

for (const n of [10000, 100000]) {
  scale('ScaleOnOneEvent', n, ({ fresh }) => fresh(), (e) => { for (let i = 0; i < n; i++) e.on('x', nop); });
  scale('ScaleDistinctNames', n, ({ fresh, names }) => ({ e: fresh(), ns: names('event:') }), ({ e, ns }) => {
    for (const name of ns) e.on(name, nop);
  });
  scale('ScaleOffNewestFirst', n, ({ fresh }) => {
    const e = fresh();
    const fns = Array.from({ length: n }, () => () => {});
    for (const f of fns) e.on('x', f);
    return { e, fns };
  }, ({ e, fns }) => { for (let i = n - 1; i >= 0; i--) e.removeListener('x', fns[i]); });
  scale('ScaleOnceReply', n, ({ fresh, names }) => ({ e: fresh(), ns: names('reply:') }), ({ e, ns }) => {
    for (const name of ns) e.once(name, nop);
    for (const name of ns) e.emit(name, name);
  });
}
if (sink < 0) console.log(sink);
