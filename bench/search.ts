/**
 * Search latency (`ConversationStore.searchMessages`, in process) on 10,000 messages, SQLite and PostgreSQL:
 * 500 conversations of 20 messages of ~40 words drawn from a 3,000-word vocabulary (Zipf-like, so some words
 * are in thousands of messages and some in a few), then ~100 queries of one or two words, the last a prefix
 * as the page sends it while typing, each for the first page of 20 hits. Prints p50/p99 and the load average.
 *
 *   nice -n 10 npx tsx bench/search.ts [--messages 10000] [--queries 100]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ConversationExport, ConversationStore } from '../src/store/contract.js';
import { openStore } from '../src/store/kysely/dialects.js';
import { postgresForTests, startPostgres } from '../test/fixtures/postgres.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '10000' }, queries: { type: 'string', default: '100' } } });
const messageCount = Number(values.messages);
const queryCount = Number(values.queries);
const perConversation = 20;

/** A seeded generator, so both stores hold the same text and get the same queries. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'po', 'da', 'fe', 'gu', 'hi', 'ja', 'be'];
const vocabulary = Array.from({ length: 3000 }, (_, i) => {
  let word = '';
  for (let n = i + 16; n > 0; n = Math.floor(n / 16)) word += syllables[n % 16];
  return word;
});
/** Zipf-like: word i is picked with weight 1/(i+1). */
function picker(next: () => number): () => string {
  const weights = vocabulary.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  weights.reduce((sum, w, i) => (cumulative[i] = sum + w / total), 0);
  return () => {
    const r = next();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] ?? 1) < r) lo = mid + 1;
      else hi = mid;
    }
    return vocabulary[lo] ?? 'ka';
  };
}

async function fill(store: ConversationStore): Promise<void> {
  const word = picker(random(42));
  const template = await store.createConversation({ title: 'template' });
  let parentId: string | null = null;
  for (let i = 0; i < perConversation; i += 1) parentId = (await store.appendMessage({ conversationId: template.id, parentId, role: i % 2 === 0 ? 'user' : 'assistant', content: 'x', model: i % 2 === 0 ? null : 'm' })).id;
  const exported = (await store.exportConversation(template.id)) as ConversationExport;
  await store.deleteConversation(template.id);
  for (let c = 0; c < messageCount / perConversation; c += 1) {
    const messages = exported.messages.map((m) => ({ ...m, content: Array.from({ length: 40 }, word).join(' ') }));
    await store.importConversation({ ...exported, conversation: { ...exported.conversation, title: `conversation ${c}` }, messages });
  }
}

function queries(): string[] {
  const next = random(7);
  const word = picker(next);
  return Array.from({ length: queryCount }, () => {
    const last = word();
    const prefix = last.slice(0, Math.max(2, Math.ceil(last.length * next())));
    return next() < 0.5 ? prefix : `${word()} ${prefix}`;
  });
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function measure(name: string, url: string): Promise<void> {
  const store = await openStore(url);
  try {
    await store.migrate();
    const filling = performance.now();
    await fill(store);
    const fillMs = performance.now() - filling;
    const list = queries();
    for (const q of list.slice(0, 10)) await store.searchMessages({ query: q }); // warm caches and plans
    const timed: { q: string; ms: number }[] = [];
    let hits = 0;
    for (const q of list) {
      const start = performance.now();
      const page = await store.searchMessages({ query: q });
      timed.push({ q, ms: performance.now() - start });
      hits += page.hits.length;
    }
    const times = timed.map((t) => t.ms).sort((a, b) => a - b);
    const slowest = [...timed].sort((a, b) => b.ms - a.ms).slice(0, 3);
    console.log(
      `${name}: ${messageCount} messages (filled in ${(fillMs / 1000).toFixed(1)} s), ${list.length} queries: p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms, max ${times.at(-1)?.toFixed(2)} ms, ${(hits / list.length).toFixed(1)} hits/query; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    );
    console.log(`  slowest: ${slowest.map((t) => `"${t.q}" ${t.ms.toFixed(1)} ms`).join(', ')}`);
  } finally {
    await store.close();
  }
}

console.log(`load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const dir = await mkdtemp(join(tmpdir(), 'parlance-bench-search-'));
try {
  await measure('sqlite', `sqlite:${join(dir, 'store.db')}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
const postgres = postgresForTests();
if (postgres === undefined) console.log('postgres: not installed, skipped');
else {
  const server = await startPostgres(postgres);
  try {
    await measure('postgres', await server.newDatabase());
  } finally {
    await server.stop();
  }
}
