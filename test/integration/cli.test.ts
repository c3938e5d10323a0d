/**
 * The `parlance` command as a user runs it: a real process, its exit code and what it prints. `run` is
 * driven through a pseudo-terminal; `ps` and `run` talk to a real server (an upstream behind it is the
 * fake, so the test can see what the chat sent).
 */
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startPtyCli, repoRoot } from '../fixtures/cli.js';
import { startFakeUpstream, streamPlan, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { freePort } from '../fixtures/net.js';
import { tinyModelPath } from '../fixtures/paths.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';
import { tempDirs } from '../fixtures/temp-dirs.js';

const tempDir = tempDirs('parlance-cli-');

describe('parlance, for someone typing it', () => {
  it('prints its version and nothing else', async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('answers an unknown command or flag with one line and a hint, not the help', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe("parlance: unknown command 'frobnicate'; see 'parlance --help'\n");

    const typo = await runCli(['lst']);
    expect(typo.stderr.trim().split('\n')).toHaveLength(1);
    expect(typo.stderr).toContain('did you mean list?');

    const flag = await runCli(['serve', '--prot', '9000']);
    expect(flag.code).not.toBe(0);
    expect(flag.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^parlance: unknown option '--prot' \(did you mean --port\?\); see 'parlance serve --help'$/)]);
  });

  it("lists the models of a models dir by the names the server serves, and removes one ('models' and 'list' alike)", async () => {
    const modelsDir = await tempDir();
    const downloaded = join(modelsDir, 'hf', 'Owner', 'Repo-GGUF', 'small-q4.gguf');
    await mkdir(join(modelsDir, 'hf', 'Owner', 'Repo-GGUF'), { recursive: true });
    await copyFile(tinyModelPath, downloaded);
    await copyFile(tinyModelPath, join(modelsDir, 'parlance-tiny.gguf'));
    await copyFile(tinyModelPath, join(modelsDir, 'half-done.gguf.part'));

    const listed = await runCli(['models', '--models-dir', modelsDir]);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+SIZE\s+MODIFIED\s+SOURCE$/);
    expect(rows.slice(1).map((row) => row.split(/\s{2,}/))).toEqual([
      ['parlance-tiny', expect.stringMatching(/^\d[\d.]* (KB|MB)$/), 'just now', 'parlance-tiny.gguf'],
      ['small-q4', expect.stringMatching(/^\d[\d.]* (KB|MB)$/), 'just now', 'hf:Owner/Repo-GGUF/small-q4.gguf'],
    ]);
    expect((await runCli(['list', '--models-dir', modelsDir])).stdout).toBe(listed.stdout);

    const removed = await runCli(['rm', 'small-q4', '--models-dir', modelsDir]);
    expect(removed.code).toBe(0);
    await expect(stat(downloaded)).rejects.toThrow();
    // The folders the download made go with it; the models dir stays.
    await expect(stat(join(modelsDir, 'hf'))).rejects.toThrow();
    expect((await runCli(['list', '--models-dir', modelsDir])).stdout).not.toContain('small-q4');

    const missing = await runCli(['rm', 'small-q4', '--models-dir', modelsDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`parlance: no model 'small-q4' in ${modelsDir}; 'parlance list' shows what is there\n`);
  });

  it('says so in one line when no server answers ps', async () => {
    const result = await runCli(['ps', '--port', String(await freePort())]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^parlance: no Parlance server answers at http:\/\/127\.0\.0\.1:\d+ .*start one with 'parlance serve'/)]);
  });
});

describe('parlance ps and run, against a running server', () => {
  let upstream: FakeUpstream;
  let server: TestServer;
  beforeAll(async () => {
    upstream = await startFakeUpstream({ models: ['chat-model'] });
    server = await startTestServer({ scripted: true, upstreams: [`fake=${upstream.url}`] });
  });
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
  });

  it('ps lists every model served, with its engine and load', async () => {
    const result = await runCli(['ps', '--url', server.url]);
    expect(result.code).toBe(0);
    const rows = result.stdout.trim().split('\n').map((row) => row.split(/\s{2,}/));
    expect(rows[0]).toEqual(['NAME', 'ENGINE', 'CONTEXT', 'BUSY', 'QUEUED']);
    expect(rows.slice(1).map((row) => [row[0], row[1]])).toEqual(
      expect.arrayContaining([
        ['parlance-tiny', 'llama'],
        ['parlance-scripted', 'scripted'],
        ['chat-model', 'upstreams'],
      ]),
    );
    expect(rows.find((row) => row[0] === 'parlance-tiny')?.[3]).toBe('0/2');
  });

  it('run streams replies in a terminal with the conversation so far; Ctrl+C stops a reply, Ctrl+D quits', async () => {
    let turn = 0;
    upstream.script = (request) => {
      if (request.method !== 'POST') return undefined;
      turn++;
      if (turn === 1) return streamPlan(['Paris', ' is', ' the', ' capital.']);
      if (turn === 2) return streamPlan(['About', ' two', ' million.']);
      // A long reply, a word every 150 ms: stopped after its first words.
      return streamPlan(Array.from({ length: 200 }, (_, i) => ` slow${i}`), { delayMs: 150 });
    };
    const chat = startPtyCli(['run', 'chat-model', '--url', server.url]);
    try {
      await chat.waitFor('>>> ');
      // Each mark is taken before typing, so a prompt drawn at once is not missed.
      let mark = chat.screen().length;
      chat.type('What is the capital of France?\r');
      await chat.waitFor('Paris is the capital.\n>>> ', mark);
      mark = chat.screen().length;
      chat.type('How many people live there?\r');
      await chat.waitFor('About two million.\n>>> ', mark);

      // The second turn carried the first: the history is the conversation.
      const second = upstream.generations()[1]?.body as { messages: { role: string; content: string }[] };
      expect(second.messages).toEqual([
        { role: 'user', content: 'What is the capital of France?' },
        { role: 'assistant', content: 'Paris is the capital.' },
        { role: 'user', content: 'How many people live there?' },
      ]);

      mark = chat.screen().length;
      chat.type('Tell me a long story.\r');
      await chat.waitFor('slow1', mark);
      chat.type('\x03');
      await chat.waitFor('(stopped)\n>>> ', mark);
      // The stop reached the upstream: its request was closed before the reply ended.
      const third = upstream.generations()[2];
      expect(await Promise.race([third?.closed, new Promise((resolve) => setTimeout(() => resolve('still open'), 5000))])).toBe(true);
      expect(chat.screen()).not.toContain('slow199');

      // Ctrl+C at the prompt only warns; Ctrl+D quits, with success.
      mark = chat.screen().length;
      chat.type('\x03');
      await chat.waitFor('Ctrl+C again or Ctrl+D to quit', mark);
      chat.type('\x04');
      expect(await chat.exited(10_000)).toBe(0);
    } finally {
      chat.kill();
    }
  });

  it('run quits on a second Ctrl+C, and names the served models when asked for one that is not', async () => {
    const chat = startPtyCli(['run', 'parlance-scripted', '--url', server.url]);
    try {
      await chat.waitFor('>>> ');
      chat.type('\x03');
      await chat.waitFor('Ctrl+C again');
      chat.type('\x03');
      expect(await chat.exited(10_000)).toBe(0);
    } finally {
      chat.kill();
    }
    const wrong = await runCli(['run', 'no-such-model', '--url', server.url]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^parlance: model 'no-such-model' is not served at http:\/\/127\.0\.0\.1:\d+; served: .*parlance-scripted/);
  });
});
