// warning.js prints the text of the MaxListenersExceededWarning Node
// emits for each case, so that events/warning_test.go can compare the Go
// warning's Error() with it.
//
// Usage: node warning.js cases.json  → prints a JSON array of strings.
// A case is {event, max, n}: n listeners added to event on a new emitter
// whose limit is max (null: the default). Event "$monitor" is
// events.errorMonitor.
'use strict';
const fs = require('fs');
const { EventEmitter, errorMonitor } = require('events');

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const texts = [];
process.emitWarning = (w) => { texts.push(String(w)); };
for (const c of cases) {
  const e = new EventEmitter();
  if (c.max !== null) e.setMaxListeners(c.max);
  const name = c.event === '$monitor' ? errorMonitor : c.event;
  const before = texts.length;
  for (let i = 0; i < c.n; i++) e.on(name, () => {});
  if (texts.length !== before + 1) texts.splice(before, texts.length - before, `${texts.length - before} warnings`);
}
process.stdout.write(JSON.stringify(texts));
