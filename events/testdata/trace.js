// trace.js runs scripted EventEmitter scenarios and prints their traces, so
// that events/differential_test.go can compare Node with the Go emitter.
//
// Usage: node trace.js scenarios.json  → prints a JSON array of traces.
//
// The op language (shared with differential_test.go):
//   {op: on|once|prepend|prependOnce, event, name, do?: [ops], throw?: bool}
//       registers a fresh listener labelled name (name.2, name.3, … when the
//       same op registers again); when called it appends
//       "label:event(args)" to the trace, runs do (unless MAX_DEPTH listeners
//       are already running), then throws if asked.
//   {op: off, event, name}       removes the latest registration of name
//   {op: removeAll, events?: []} removeAllListeners(...events)
//   {op: emit, event, args?}     appends "emit event = bool" or "emit event threw X"
//   {op: count, event}           appends "count event = n"
//   {op: names}                  appends "names [..]"
//   {op: setMax, n}              setMaxListeners(n)
//   {op: sub, event, name}       events.on(emitter, event), the iterator kept as name
//   {op: unsub, name}            return() on that iterator
// Event "$monitor" is events.errorMonitor. An arg "!err:msg" is new Error(msg).
// A listener of an iterator's (events.on's own) shows as "?".
'use strict';
const fs = require('fs');
const { EventEmitter, errorMonitor, on } = require('events');

const MAX_DEPTH = 4;
const MAX_TRACE = 3000;
const MAX_ADDS = 300; // registrations per scenario: bounds once/removeListener loops

const ev = (name) => (name === '$monitor' ? errorMonitor : name);
const unev = (name) => (name === errorMonitor ? '$monitor' : name);

function fmtVal(v) {
  // Node hands 'removeListener' the once wrapper when the event had other
  // listeners; Go always gives the listener itself: name both by it.
  if (typeof v === 'function') return v.label || (v.listener && v.listener.label) || '?';
  if (typeof v === 'symbol') return JSON.stringify(unev(v));
  if (v === undefined) return 'undefined';
  if (v instanceof Error) return `Error(${v.message})`;
  return JSON.stringify(v);
}

function fmtThrown(x) {
  if (x && x.boom) return `boom(${x.boom})`;
  if (x instanceof Error && x.code === 'ERR_UNHANDLED_ERROR') return `unhandled(${fmtVal(x.context)})`;
  if (x instanceof Error) return `Error(${x.message})`;
  return `other(${String(x)})`;
}

function run(ops) {
  const trace = [];
  const e = new EventEmitter();
  const regs = new Map(); // name -> [fn, ...]
  const counts = new Map();
  let depth = 0;
  let adds = 0;
  const errorTables = [];
  // The live iterators of events.on: name -> {it, event, handler, onError}.
  const iters = new Map();
  const unlabelled = (name) => e.rawListeners(name).filter((f) => !f.label && !(f.listener && f.listener.label));
  // removeAllListeners calls in progress that walk a listener array by
  // index (they do when 'removeListener' listeners exist). A listener array
  // changed under the walk, other than by appending, makes Node skip,
  // repeat or throw (ERR_INVALID_ARG_TYPE); Go removes the listeners the
  // event had when the walk began. Flag it: the generator must avoid it.
  let walking = 0;
  const changesUnderWalk = new Set(['prepend', 'prependOnce', 'off', 'removeAll', 'emit']);
  process.emitWarning = (w) => {
    if (w && w.name === 'MaxListenersExceededWarning') {
      trace.push(`warn ${fmtVal(w.type)} ${w.count}`);
      if (w.type === 'error' && [...iters.values()].some((i) => i.onError && e.rawListeners('error').includes(i.onError))) {
        // Node counts the 'error' listener of events.on; Go does not.
        trace.push('quirk: the warning counts an iterator\'s \'error\' listener');
      }
    }
  };

  const exec = (op) => {
    if (trace.length > MAX_TRACE) return;
    if (walking > 0 && changesUnderWalk.has(op.op)) trace.push(`quirk: ${op.op} during a removeAllListeners walk`);
    if (op.op === 'emit') return execOp(op);
    try {
      execOp(op);
    } catch (x) {
      trace.push(`${op.op} threw ${fmtThrown(x)}`);
    }
  };
  const execOp = (op) => {
    switch (op.op) {
      case 'on': case 'once': case 'prepend': case 'prependOnce': {
        if (++adds > MAX_ADDS) return;
        const n = (counts.get(op.name) || 0) + 1;
        counts.set(op.name, n);
        const label = n === 1 ? op.name : `${op.name}.${n}`;
        const fn = function(...args) {
          trace.push(`${label}:${unev(op.event)}(${args.map(fmtVal).join(',')})`);
          if (walking > 0 && (op.op === 'once' || op.op === 'prependOnce')) {
            trace.push('quirk: a once listener removed itself during a removeAllListeners walk');
          }
          if (depth < MAX_DEPTH) {
            depth++;
            try {
              for (const d of op.do || []) exec(d);
            } finally {
              depth--;
            }
          }
          const stale = errorTables[errorTables.length - 1];
          if (op.event === '$monitor' && stale && e._events !== stale && stale.error !== e._events.error) {
            // Node's emit('error') looks for 'error' listeners in the table
            // it read before the monitors ran; removeAllListeners() or the
            // last removal replaces that table, so Node then sees stale
            // listeners. Go looks at the current ones. Flag the quirk.
            trace.push('quirk: events table replaced by an errorMonitor listener');
          }
          if (op.throw) throw { boom: label };
        };
        fn.label = label;
        if (!regs.has(op.name)) regs.set(op.name, []);
        regs.get(op.name).push(fn);
        const m = { on: 'on', once: 'once', prepend: 'prependListener', prependOnce: 'prependOnceListener' }[op.op];
        e[m](ev(op.event), fn);
        break;
      }
      case 'off': {
        const list = regs.get(op.name);
        if (list && list.length) e.removeListener(ev(op.event), list[list.length - 1]);
        break;
      }
      case 'removeAll': {
        const walks = e.listenerCount('removeListener') > 0;
        if (walks) walking++;
        try {
          if (op.events) e.removeAllListeners(...op.events.map(ev));
          else e.removeAllListeners();
        } finally {
          if (walks) walking--;
        }
        for (const i of iters.values()) {
          if (i.onError && !e.rawListeners(i.event).includes(i.handler) && e.rawListeners('error').includes(i.onError)) {
            // Go ends a subscription whose listener was removed, 'error'
            // listener included; Node leaves the iterator waiting.
            trace.push('quirk: removeAllListeners left an iterator\'s \'error\' listener');
          }
        }
        break;
      }
      case 'sub': {
        const before = new Set([...unlabelled(ev(op.event)), ...unlabelled('error')]);
        const it = on(e, ev(op.event));
        const fresh = (name) => unlabelled(name).find((f) => !before.has(f));
        iters.set(op.name, { it, event: ev(op.event), handler: fresh(ev(op.event)), onError: op.event === 'error' ? null : fresh('error') });
        break;
      }
      case 'unsub': {
        const i = iters.get(op.name);
        if (i) i.it.return();
        break;
      }
      case 'emit': {
        const args = (op.args || []).map((a) => (typeof a === 'string' && a.startsWith('!err:') ? new Error(a.slice(5)) : a));
        errorTables.push(e._events);
        try {
          trace.push(`emit ${op.event} = ${e.emit(ev(op.event), ...args)}`);
        } catch (x) {
          trace.push(`emit ${op.event} threw ${fmtThrown(x)}`);
        } finally {
          errorTables.pop();
        }
        break;
      }
      case 'count':
        trace.push(`count ${op.event} = ${e.listenerCount(ev(op.event))}`);
        break;
      case 'names':
        trace.push(`names [${e.eventNames().map(unev).join(' ')}]`);
        break;
      case 'setMax':
        e.setMaxListeners(op.n);
        break;
      default:
        throw new Error(`unknown op ${op.op}`);
    }
  };
  for (const op of ops) exec(op);
  return trace;
}

const scenarios = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify(scenarios.map(run)));
