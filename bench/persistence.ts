/**
 * Streaming with persistence on versus off, in one run on one server:
 *   off: POST /v1/chat/completions (stateless, nothing stored)
 *   on:  POST /api/conversations/:id/messages (user message stored first, reply saved
 *        every 250 ms while it streams, closed at the end)
 * Both stream the same scripted reply (the echo model, TOKENS words, PACE ms apart) with
 * CONCURRENCY replies at once on SQLite. Reports what a user feels of persistence: the time to
 * the first token it adds (p50 and p99 of each path, and their difference; target at 50
 * concurrent: ≤ 1 ms at p50, ≤ 3 ms at p99), and the server CPU it adds per reply (ms). The CPU
 * per 1,000 tokens and its ratio are reported too, for comparison with earlier rounds: with
 * short replies the ratio is mostly the two durable commits of a turn, which no reply length
 * amortises, so it is no target. Every failed request is listed.
 *
 * The on path's conversations grow a turn at a time, and the model is sent the whole branch.
 * `--off-history same` makes the off path a stateless client of the same conversations: it
 * sends the history it keeps itself, as long as the on path's, so that both paths hand the
 * model the same input and the difference is persistence alone. The default, `none`, sends
 * only the new message (the off path's cost then does not grow with the conversation).
 *
 * `--only on|off` runs one path alone (no ratio): for profiling one path with `--cpu-prof-dir`.
 *
 * `--store-only` measures the store's share alone, without a server: see `storeOnly` below.
 *
 *   npx tsx bench/persistence.ts [--concurrency 50] [--total 300] [--tokens 64] [--pace 10] [--rounds 2] [--off-history none|same] [--cpu-prof-dir DIR] [--only on|off]
 *   npx tsx bench/persistence.ts --store-only [--concurrency 50] [--total 300] [--tokens 64] [--pace 10] [--rounds 2]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/fixtures/net.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '50' },
    total: { type: 'string', default: '300' },
    tokens: { type: 'string', default: '64' },
    pace: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    'off-history': { type: 'string', default: 'none' },
    'cpu-prof-dir': { type: 'string' },
    'store-only': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const concurrency = Number(values.concurrency);
const total = Number(values.total);
const tokens = Number(values.tokens);
const pace = Number(values.pace);
const rounds = Number(values.rounds);
const offHistory = values['off-history'];
if (offHistory !== 'none' && offHistory !== 'same') throw new Error('--off-history is none or same');
const only = values.only;
if (only !== undefined && only !== 'on' && only !== 'off') throw new Error('--only is on or off');

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in clock ticks of 10 ms
}

const prompt = Array.from({ length: tokens }, (_, i) => `w${i}`).join(' ');

/**
 * The store calls of one turn, as ConversationService makes them: start the exchange (read the
 * conversation, then the user's message, the streaming reply and the branch, one transaction), save its text
 * every 250 ms of a TOKENS × PACE ms reply, finish it (which answers the conversation for the final
 * frame). The service saves every growing reply's text in one call per period; here the saves of
 * the turns in flight that fall in the same turn of the event loop go in one call.
 * CONCURRENCY turns at once, in this process, on a fresh SQLite file; reports this process's CPU
 * per turn, which is what persistence adds to a reply before HTTP and streaming.
 */
async function storeOnly(): Promise<void> {
  const { openStore } = await import('../src/store/kysely/dialects.js');
  const dir = await mkdtemp(join(tmpdir(), 'parlance-bench-store-'));
  const store = await openStore(join(dir, 'store.sqlite'));
  try {
    await store.migrate();
    const saves = Math.ceil((tokens * pace) / 250);
    const conversations = await Promise.all(Array.from({ length: concurrency }, () => store.createConversation({ model: 'parlance-scripted' })));
    let next = 0;
    let batch: { messageId: string; content: string }[] = [];
    let batchSaved: Promise<unknown> | undefined;
    const save = (messageId: string, content: string): Promise<unknown> => {
      batch.push({ messageId, content });
      batchSaved ??= new Promise((resolve) => setImmediate(resolve)).then(() => {
        const texts = batch;
        batch = [];
        batchSaved = undefined;
        return store.updateStreamingTexts(texts);
      });
      return batchSaved;
    };
    const turn = async (): Promise<void> => {
      const id = conversations[next++ % concurrency]!.id;
      const { assistantMessage } = await store.startExchange({
        conversationId: id,
        content: prompt,
        decide: (conversation) => ({ parentId: conversation.activeLeafId, model: conversation.model ?? 'parlance-scripted' }),
      });
      for (let i = 1; i <= saves; i++) await save(assistantMessage.id, prompt.slice(0, Math.round((prompt.length * i * 250) / (tokens * pace))));
      await store.finishReply(assistantMessage.id, { status: 'complete', content: prompt, usage: { promptTokens: tokens, completionTokens: tokens }, timings: { firstTokenMs: pace, totalMs: tokens * pace } });
    };
    const failures: Record<string, number> = {};
    const run = async (count: number): Promise<void> => {
      let started = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (started < count) {
            started++;
            await turn().catch((error: unknown) => {
              const key = (error as Error).message.slice(0, 120);
              failures[key] = (failures[key] ?? 0) + 1;
            });
          }
        }),
      );
    };
    await run(concurrency); // warm: one turn per conversation
    const cpu0 = process.cpuUsage();
    await run(total * rounds);
    const cpu = process.cpuUsage(cpu0);
    const perTurn = (cpu.user + cpu.system) / 1000 / (total * rounds);
    console.log(`\nStore only — ${total * rounds} turns, ${concurrency} at once, ${tokens} tokens each, ${saves} text saves per turn, SQLite, in process`);
    console.log(`CPU per turn: ${perTurn.toFixed(3)} ms (${((perTurn * 1000) / tokens).toFixed(1)} ms per 1k tokens); failed: ${Object.values(failures).reduce((a, b) => a + b, 0)}`, failures);
    console.log(JSON.stringify({ bench: 'persistence-store', concurrency, turns: total * rounds, tokens, saves, cpuMsPerTurn: Number(perTurn.toFixed(3)) }));
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
if (values['store-only']) {
  await storeOnly();
  process.exit(0);
}

interface PathResult {
  tokens: number;
  replies: number;
  /** Time to the first token of each reply, ms, from the request being sent. */
  ttftMs: number[];
  cpuMs: number;
  failures: Record<string, number>;
  wallMs: number;
}

/** What one streamed reply gave: its pieces, and how long the first took to come. */
interface Reply {
  readonly count: number;
  readonly ttftMs: number;
}

async function runPath(pid: number, one: () => Promise<Reply>): Promise<PathResult> {
  const failures: Record<string, number> = {};
  const ttftMs: number[] = [];
  let received = 0;
  let started = 0;
  const cpu0 = cpuMs(pid);
  const wall0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        try {
          const reply = await one(); // not `received += (await …).count`: that reads `received` before the await
          received += reply.count;
          ttftMs.push(reply.ttftMs);
        } catch (error) {
          const key = (error as Error).message.slice(0, 120);
          failures[key] = (failures[key] ?? 0) + 1;
        }
      }
    }),
  );
  return { tokens: received, replies: ttftMs.length, ttftMs, cpuMs: cpuMs(pid) - cpu0, failures, wallMs: Math.round(performance.now() - wall0) };
}

/** The q-quantile (0..1) of some values, nearest rank. */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** Counts the reply's pieces (one per scripted token) in a stream, checking it ended properly, and times the first. */
async function countEvents(response: Response, piece: string, end: string, sentAt: number): Promise<Reply> {
  if (!response.ok) throw new Error(`status ${response.status}: ${await response.text()}`);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ttftMs: number | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (ttftMs === undefined && text.includes(piece)) ttftMs = performance.now() - sentAt;
  }
  if (!text.includes(end)) throw new Error(`stream did not end with ${end}`);
  return { count: text.split(piece).length - 1, ttftMs: ttftMs ?? Number.NaN };
}

const dataDir = await mkdtemp(join(tmpdir(), 'parlance-bench-persist-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const profile = values['cpu-prof-dir'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof-dir']] : [];
const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/cli.ts', '--no-embedded', '--scripted', '--scripted-delay', String(pace), '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', '--queue-length', '10000'], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
try {
  for (let i = 0; ; i++) {
    if (await fetch(`${base}/ready`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const pid = child.pid!;
  // With --off-history same, one history per on-path conversation, taken in the same round-robin order.
  const histories: { role: string; content: string }[][] = Array.from({ length: concurrency }, () => []);
  let offTurn = 0;
  const off = async () => {
    const history = offHistory === 'same' ? histories[offTurn++ % concurrency]! : [];
    const sentAt = performance.now();
    const response = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'parlance-scripted', stream: true, messages: [...history, { role: 'user', content: prompt }] }),
    });
    const reply = await countEvents(response, '"delta":{"content":', '[DONE]', sentAt); // not the opening chunk's empty "content":""
    history.push({ role: 'user', content: prompt }, { role: 'assistant', content: prompt }); // the echo model's reply is the prompt
    return reply;
  };
  // Each worker talks in a conversation of its own, made (and named, after its first exchange) before measuring:
  // what is measured is the cost of a turn, as a user chatting pays it.
  const conversations: string[] = [];
  for (let i = 0; i < concurrency; i++) {
    const created = await fetch(`${base}/api/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'parlance-scripted' }) });
    conversations.push(((await created.json()) as { id: string }).id);
  }
  let turn = 0;
  const on = async () => {
    const conversation = { id: conversations[turn++ % conversations.length]! };
    const sentAt = performance.now();
    const response = await fetch(`${base}/api/conversations/${conversation.id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: prompt }) });
    return countEvents(response, 'event: delta', 'event: done', sentAt);
  };
  // Warm both paths (JIT, SQLite pages) before measuring.
  await Promise.all(Array.from({ length: concurrency }, () => Promise.all([off(), on()])));

  const results: { path: string; round: number; result: PathResult }[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Alternate the order each round so drift on a shared machine hits both paths.
    const order = round % 2 === 1 ? (['off', 'on'] as const) : (['on', 'off'] as const);
    for (const path of order) if (only === undefined || only === path) results.push({ path, round, result: await runPath(pid, path === 'off' ? off : on) });
  }
  const sum = (path: string) => {
    const rows = results.filter((row) => row.path === path);
    const tokensSum = rows.reduce((n, row) => n + row.result.tokens, 0);
    const cpuSum = rows.reduce((n, row) => n + row.result.cpuMs, 0);
    const failures = rows.reduce((n, row) => n + Object.values(row.result.failures).reduce((a, b) => a + b, 0), 0);
    const replies = rows.reduce((n, row) => n + row.result.replies, 0);
    const ttft = rows.flatMap((row) => row.result.ttftMs);
    return { tokens: tokensSum, replies, cpuMs: cpuSum, perThousand: (cpuSum * 1000) / tokensSum, cpuPerReplyMs: cpuSum / replies, ttftP50: quantile(ttft, 0.5), ttftP99: quantile(ttft, 0.99), failures };
  };
  if (only !== undefined) {
    const row = sum(only);
    console.log(`\n${only} alone — ${row.tokens} tokens, server CPU ${row.cpuMs} ms, ${row.perThousand.toFixed(1)} ms / 1k tokens, failed ${row.failures}`);
  } else {
    const offSum = sum('off');
    const onSum = sum('on');
    console.log(`\nPersistence on vs off — ${concurrency} concurrent replies, ${total} per path per round, ${tokens} tokens each, ${pace} ms apart, ${rounds} rounds, off-path history ${offHistory}, SQLite`);
    console.log('path                          TTFT p50 ms   TTFT p99 ms   CPU ms / reply   CPU ms / 1k tokens   failed');
    for (const [name, row] of [['off (/v1/chat/completions)', offSum], ['on  (/api/conversations/…)', onSum]] as const) {
      console.log(
        `${name.padEnd(28)}  ${row.ttftP50.toFixed(2).padStart(11)}   ${row.ttftP99.toFixed(2).padStart(11)}   ${row.cpuPerReplyMs.toFixed(3).padStart(14)}   ${row.perThousand.toFixed(1).padStart(18)}   ${row.failures}`,
      );
    }
    const added = { ttftP50Ms: onSum.ttftP50 - offSum.ttftP50, ttftP99Ms: onSum.ttftP99 - offSum.ttftP99, cpuPerReplyMs: onSum.cpuPerReplyMs - offSum.cpuPerReplyMs };
    const held = added.ttftP50Ms <= 1 && added.ttftP99Ms <= 3;
    console.log(`\npersistence adds: TTFT ${added.ttftP50Ms.toFixed(2)} ms at p50 (target ≤ 1), ${added.ttftP99Ms.toFixed(2)} ms at p99 (target ≤ 3): ${held ? 'held' : 'missed'}`);
    console.log(`                  CPU ${added.cpuPerReplyMs.toFixed(3)} ms per reply; CPU per 1k tokens on/off ${(onSum.perThousand / offSum.perThousand).toFixed(3)} (for comparison, no target)`);
    for (const row of results) if (Object.keys(row.result.failures).length) console.log(`failures (${row.path}, round ${row.round}):`, row.result.failures);
    const round3 = (value: number): number => Number(value.toFixed(3));
    const summary = (row: typeof offSum) => ({ ...row, perThousand: round3(row.perThousand), cpuPerReplyMs: round3(row.cpuPerReplyMs), ttftP50: round3(row.ttftP50), ttftP99: round3(row.ttftP99) });
    console.log(
      JSON.stringify({ bench: 'persistence', concurrency, total, tokens, pace, rounds, offHistory, off: summary(offSum), on: summary(onSum), added: { ttftP50Ms: round3(added.ttftP50Ms), ttftP99Ms: round3(added.ttftP99Ms), cpuPerReplyMs: round3(added.cpuPerReplyMs) }, held }),
    );
  }
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await rm(dataDir, { recursive: true, force: true });
}
