import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cachePathFor,
  DEFAULT_MODEL_REF,
  hfDownloadUrl,
  ModelUnavailableError,
  modelIdFromPath,
  parseModelRef,
  resolveModel,
} from '../../src/engines/llama-cpp/model-source.js';
import { tinyModelPath } from '../fixtures/paths.js';

interface SeenRequest {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface TestServer {
  readonly origin: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, requestIndex: number) => void;

const servers: TestServer[] = [];

async function startServer(handler: Handler): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length - 1);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  const testServer: TestServer = {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((done) => {
        // Stalled responses (the abort test) would otherwise keep close() waiting.
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  servers.push(testServer);
  return testServer;
}

/** Serves `bytes`, honouring `Range: bytes=N-` when `ranges` is true. */
function serveBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, ranges = true): void {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (ranges && match?.[1] !== undefined) {
    const start = Number(match[1]);
    if (start >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': bytes.length - start, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
    res.end(bytes.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'application/octet-stream' });
  res.end(bytes);
}

/** Announces the whole file, sends the first half, then drops the connection. */
function serveHalfThenCut(res: ServerResponse, bytes: Buffer): void {
  res.writeHead(200, { 'content-length': bytes.length });
  // Waiting a little lets the client write what it got before the reset arrives.
  res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => setTimeout(() => res.socket?.destroy(), 50));
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

/** The error is a ModelUnavailableError whose message is short, stackless and has the local-file hint. */
function expectUnavailable(error: unknown, reason: RegExp): ModelUnavailableError {
  expect(error).toBeInstanceOf(ModelUnavailableError);
  const unavailable = error as ModelUnavailableError;
  expect(unavailable.name).toBe('ModelUnavailableError');
  expect(unavailable.message).toMatch(reason);
  expect(unavailable.message).toContain('--model /path/to/model.gguf (or PARLANCE_MODEL)');
  expect(unavailable.message.split('\n').length).toBeLessThanOrEqual(2);
  expect(unavailable.message).not.toMatch(/\n\s+at /);
  return unavailable;
}

let model: Buffer;
let modelsDir: string;

beforeAll(async () => {
  model = await readFile(tinyModelPath);
  expect(model.subarray(0, 4).toString('latin1')).toBe('GGUF');
});

beforeEach(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'parlance-models-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await rm(modelsDir, { recursive: true, force: true });
});

describe('parseModelRef', () => {
  it('parses hf: references, with and without a revision', () => {
    expect(parseModelRef('hf:owner/repo/sub/model.Q4.gguf')).toEqual({ kind: 'hf', owner: 'owner', repo: 'repo', file: 'sub/model.Q4.gguf', revision: 'main' });
    expect(parseModelRef('hf:owner/repo/model.gguf#v1.0')).toMatchObject({ kind: 'hf', file: 'model.gguf', revision: 'v1.0' });
    expect(parseModelRef(DEFAULT_MODEL_REF)).toMatchObject({ kind: 'hf', owner: 'Qwen', repo: 'Qwen2.5-0.5B-Instruct-GGUF', file: 'qwen2.5-0.5b-instruct-q4_k_m.gguf' });
  });

  it('rejects malformed hf: references, including ones that would climb out of the cache', () => {
    for (const ref of ['hf:owner/repo', 'hf:owner/repo/', 'hf:owner/repo/model.bin', 'hf:owner/repo/../../etc/x.gguf', 'hf:../repo/x.gguf', 'hf:owner/repo/x.gguf#']) {
      expectUnavailable(rejectionSync(() => parseModelRef(ref)), /malformed hf: reference/);
    }
  });

  it('parses URLs and local paths', () => {
    const url = parseModelRef('https://example.com/m/model.gguf?download=1');
    expect(url.kind === 'url' && url.url.href).toBe('https://example.com/m/model.gguf?download=1');
    expect(parseModelRef('models/x.gguf')).toEqual({ kind: 'file', path: resolve('models/x.gguf') });
    expect(parseModelRef('~/x.gguf')).toEqual({ kind: 'file', path: join(homedir(), 'x.gguf') });
    expect(parseModelRef('/abs/x.gguf')).toEqual({ kind: 'file', path: '/abs/x.gguf' });
  });

  it('maps refs to readable cache paths and download URLs', () => {
    const hf = parseModelRef('hf:owner/repo/sub/model.gguf#refs/pr/1');
    if (hf.kind !== 'hf') throw new Error('expected hf');
    expect(cachePathFor(hf, '/cache')).toBe('/cache/hf/owner/repo@refs%2Fpr%2F1/sub/model.gguf');
    expect(hfDownloadUrl(hf, 'https://mirror.test/').href).toBe('https://mirror.test/owner/repo/resolve/refs%2Fpr%2F1/sub/model.gguf');
    const url = parseModelRef('http://127.0.0.1:8080/files/model.gguf');
    if (url.kind !== 'url') throw new Error('expected url');
    expect(cachePathFor(url, '/cache')).toMatch(/^\/cache\/url\/127\.0\.0\.1_8080\/[0-9a-f]{12}\/model\.gguf$/);
    expect(modelIdFromPath('/cache/hf/o/r/qwen2.5-0.5b-instruct-q4_k_m.gguf')).toBe('qwen2.5-0.5b-instruct-q4_k_m');
  });
});

function rejectionSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a throw');
}

describe('resolveModel', () => {
  it('downloads a URL with monotonic progress, then serves it from the cache without a request', async () => {
    const server = await startServer((req, res) => serveBytes(req, res, model));
    const ref = `${server.origin}/files/parlance-tiny.gguf`;
    const progress: { received: number; total: number | undefined }[] = [];

    const first = await resolveModel(ref, { modelsDir, onProgress: (p) => progress.push(p) });

    expect(first.downloaded).toBe(true);
    expect(first.path.startsWith(join(modelsDir, 'url'))).toBe(true);
    expect(first.path).toMatch(/\/[0-9a-f]{12}\/parlance-tiny\.gguf$/);
    expect((await readFile(first.path)).equals(model)).toBe(true);
    expect(await filesUnder(modelsDir)).toEqual([first.path]);
    expect(progress.length).toBeGreaterThan(1);
    for (const [i, p] of progress.entries()) {
      expect(p.total).toBe(model.length);
      if (i > 0) expect(p.received).toBeGreaterThanOrEqual(progress[i - 1]?.received ?? 0);
    }
    expect(progress.at(-1)?.received).toBe(model.length);
    expect(server.requests).toHaveLength(1);

    const second = await resolveModel(ref, { modelsDir });
    expect(second).toEqual({ path: first.path, downloaded: false });
    expect(server.requests).toHaveLength(1);
    expect(modelIdFromPath(second.path)).toBe('parlance-tiny');
  });

  it('downloads a file node-llama-cpp can load', async () => {
    const server = await startServer((req, res) => serveBytes(req, res, model));
    const { path } = await resolveModel(`${server.origin}/parlance-tiny.gguf`, { modelsDir });
    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ gpu: false, build: 'never' });
    try {
      const loaded = await llama.loadModel({ modelPath: path });
      expect(loaded.trainContextSize).toBeGreaterThan(0);
      await loaded.dispose();
    } finally {
      await llama.dispose();
    }
  });

  it('resolves hf: refs through hfEndpoint, sends the token, and does not leak it across a redirect', async () => {
    const cdn = await startServer((req, res) => serveBytes(req, res, model));
    const hub = await startServer((req, res) => {
      res.writeHead(302, { location: `${cdn.origin}/blobs/abc123` }).end();
    });

    const result = await resolveModel('hf:someone/tiny-GGUF/dir/tiny-q8.gguf#v2', { modelsDir, hfEndpoint: `${hub.origin}/`, hfToken: 'hf_secret' });

    expect(result).toEqual({ path: join(modelsDir, 'hf', 'someone', 'tiny-GGUF@v2', 'dir', 'tiny-q8.gguf'), downloaded: true });
    expect((await readFile(result.path)).equals(model)).toBe(true);
    expect(hub.requests.map((r) => r.url)).toEqual(['/someone/tiny-GGUF/resolve/v2/dir/tiny-q8.gguf']);
    expect(hub.requests[0]?.headers.authorization).toBe('Bearer hf_secret');
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('resumes with a Range request after the connection drops', async () => {
    const server = await startServer((req, res, index) => (index === 0 ? serveHalfThenCut(res, model) : serveBytes(req, res, model)));

    const result = await resolveModel(`${server.origin}/m.gguf`, { modelsDir, retryDelayMs: 10 });

    expect((await readFile(result.path)).equals(model)).toBe(true);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]?.headers.range).toBeUndefined();
    const range = /^bytes=(\d+)-$/.exec(server.requests[1]?.headers.range ?? '');
    expect(range).not.toBeNull();
    const start = Number(range?.[1]);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(model.length / 2);
    expect(await filesUnder(modelsDir)).toEqual([result.path]);
  });

  it('starts over cleanly when the server ignores Range', async () => {
    const server = await startServer((req, res, index) => (index === 0 ? serveHalfThenCut(res, model) : serveBytes(req, res, model, false)));

    const result = await resolveModel(`${server.origin}/m.gguf`, { modelsDir, retryDelayMs: 10 });

    expect(server.requests[1]?.headers.range).toMatch(/^bytes=\d+-$/);
    expect((await readFile(result.path)).equals(model)).toBe(true);
  });

  it('retries a 503 and gives up on dropped connections after maxAttempts, keeping the part to resume', async () => {
    const flaky = await startServer((req, res, index) => (index === 0 ? res.writeHead(503).end() : serveBytes(req, res, model)));
    const ok = await resolveModel(`${flaky.origin}/m.gguf`, { modelsDir, retryDelayMs: 10 });
    expect((await readFile(ok.path)).equals(model)).toBe(true);

    const cutting = await startServer((_req, res) => serveHalfThenCut(res, model));
    const error = await rejection(resolveModel(`${cutting.origin}/m.gguf`, { modelsDir, retryDelayMs: 10, maxAttempts: 2 }));
    expectUnavailable(error, /connection to 127\.0\.0\.1:\d+ (dropped|closed)/);
    expect(cutting.requests).toHaveLength(2);
    const leftovers = (await filesUnder(modelsDir)).filter((file) => file !== ok.path);
    expect(leftovers).toHaveLength(1);
    expect(leftovers[0]).toMatch(/\.gguf\.part$/);
  });

  it('finishes a complete part left before its rename, via the 416 the server answers', async () => {
    const server = await startServer((req, res) => serveBytes(req, res, model));
    const ref = `${server.origin}/m.gguf`;
    const parsed = parseModelRef(ref);
    if (parsed.kind !== 'url') throw new Error('expected url');
    const target = cachePathFor(parsed, modelsDir);
    await mkdir(join(target, '..'), { recursive: true });
    await writeFile(`${target}.part`, model);

    expect(await resolveModel(ref, { modelsDir })).toEqual({ path: target, downloaded: true });

    expect(server.requests[0]?.headers.range).toBe(`bytes=${model.length}-`);
    expect((await readFile(target)).equals(model)).toBe(true);
    expect(await filesUnder(modelsDir)).toEqual([target]);
  });

  it('fails on a 404 with the status and the --model hint, leaving nothing in the cache', async () => {
    const server = await startServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found'));
    const ref = `${server.origin}/missing.gguf`;

    const error = expectUnavailable(await rejection(resolveModel(ref, { modelsDir })), /HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/missing\.gguf/);

    expect(error.message).toContain(ref);
    expect(server.requests).toHaveLength(1);
    expect(await filesUnder(modelsDir)).toEqual([]);
  });

  it('rejects an HTML page served as 200 as not a GGUF, leaving nothing in the cache', async () => {
    const html = `<!DOCTYPE html><html><body>${'Sign in to continue. '.repeat(5000)}</body></html>`;
    const server = await startServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));

    expectUnavailable(await rejection(resolveModel(`${server.origin}/model.gguf`, { modelsDir })), /not a GGUF file \(starts with '<!DO'\)/);

    expect(await filesUnder(modelsDir)).toEqual([]);
  });

  it('fails with "cannot connect" when the port is closed', async () => {
    const server = await startServer(() => undefined);
    await server.close();
    const host = new URL(server.origin).host;

    expectUnavailable(await rejection(resolveModel(`${server.origin}/m.gguf`, { modelsDir })), new RegExp(`cannot connect to ${host.replace(/\./g, '\\.')} \\(connection refused\\)`));
    expect(await filesUnder(modelsDir)).toEqual([]);
  });

  it('stops when the signal aborts, keeps no model, and resumes the part later', async () => {
    const half = Math.floor(model.length / 2);
    const server = await startServer((req, res, index) => {
      if (index > 0) {
        serveBytes(req, res, model);
        return;
      }
      res.writeHead(200, { 'content-length': model.length });
      res.write(model.subarray(0, half)); // ...and never the rest
    });
    const controller = new AbortController();
    const ref = `${server.origin}/m.gguf`;
    let scheduled = false;

    const error = await rejection(
      resolveModel(ref, {
        modelsDir,
        signal: controller.signal,
        onProgress: ({ received }) => {
          // A moment's delay lets the first half reach the disk, so the resume below is deterministic.
          if (received >= half && !scheduled) {
            scheduled = true;
            setTimeout(() => controller.abort(), 100);
          }
        },
      }),
    );

    expect((error as Error).name).toBe('AbortError');
    const parts = await filesUnder(modelsDir);
    expect(parts).toHaveLength(1);
    expect(parts[0]).toMatch(/\.gguf\.part$/);
    expect((await stat(parts[0] ?? '')).size).toBe(half);

    const resumed = await resolveModel(ref, { modelsDir });
    expect((await readFile(resumed.path)).equals(model)).toBe(true);
    expect(server.requests[1]?.headers.range).toBe(`bytes=${half}-`);
    expect(await filesUnder(modelsDir)).toEqual([resumed.path]);
  });

  it('draws a bar on a terminal and plain lines elsewhere', async () => {
    const server = await startServer((req, res) => serveBytes(req, res, model));
    const capture = (isTTY: boolean): { output: PassThrough & { isTTY: boolean; columns: number }; text: () => string } => {
      const output = Object.assign(new PassThrough(), { isTTY, columns: 100 });
      const chunks: Buffer[] = [];
      output.on('data', (chunk: Buffer) => chunks.push(chunk));
      return { output, text: () => Buffer.concat(chunks).toString('utf8') };
    };

    const tty = capture(true);
    await resolveModel(`${server.origin}/a.gguf`, { modelsDir, progressBar: true, progressOutput: tty.output });
    expect(tty.text()).toMatch(/^\r.*a\.gguf \[/);
    expect(tty.text()).toMatch(/\] 100% .*\n$/);

    const plain = capture(false);
    await resolveModel(`${server.origin}/b.gguf`, { modelsDir, progressBar: true, progressOutput: plain.output });
    expect(plain.text()).not.toContain('\r');
    expect(plain.text()).toMatch(/^Downloading .*b\.gguf from http:\/\/127\.0\.0\.1:\d+\/b\.gguf\nDownloaded .*b\.gguf \(\d/);
  });

  it('accepts a local GGUF as is, and rejects a missing path or a non-GGUF file', async () => {
    expect(await resolveModel(tinyModelPath, { modelsDir })).toEqual({ path: tinyModelPath, downloaded: false });

    const missing = join(modelsDir, 'nope', 'model.gguf');
    expectUnavailable(await rejection(resolveModel(missing, { modelsDir })), new RegExp(`no such file ${missing.replace(/[.]/g, '\\.')}`));

    const text = join(modelsDir, 'notes.gguf');
    await writeFile(text, 'hello, not a model');
    expectUnavailable(await rejection(resolveModel(text, { modelsDir })), /notes\.gguf is not a GGUF file \(starts with 'hell'\)/);

    await mkdir(join(modelsDir, 'dir.gguf'));
    expectUnavailable(await rejection(resolveModel(join(modelsDir, 'dir.gguf'), { modelsDir })), /is a directory/);
  });
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
