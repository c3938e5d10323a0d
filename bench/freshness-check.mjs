// The cost of `npm start`'s is-the-build-fresh check (scripts/ensure-built.mjs `isCurrent`, both parts), this
// tree's against another tree's (each walks its own sources), alternated in one process; medians of 30, warm.
//   node bench/freshness-check.mjs /tmp/before/scripts/ensure-built.mjs
import { pathToFileURL } from 'node:url';

const before = process.argv[2];
if (!before) throw new Error('usage: node bench/freshness-check.mjs <other tree>/scripts/ensure-built.mjs');
const trees = { before: await import(pathToFileURL(before).href), after: await import('../scripts/ensure-built.mjs') };
const times = { before: [], after: [] };
for (let i = 0; i < 30; i++) {
  for (const [name, tree] of Object.entries(trees)) {
    const started = performance.now();
    await tree.isCurrent('server');
    await tree.isCurrent('web');
    times[name].push(performance.now() - started);
  }
}
const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];
console.log(`before ${median(times.before).toFixed(2)} ms, after ${median(times.after).toFixed(2)} ms (medians of 30)`);
