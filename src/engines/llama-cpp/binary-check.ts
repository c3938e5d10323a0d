import childProcess, { type ChildProcess, type ForkOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { arch, cpus, platform, release } from 'node:os';
import { dirname } from 'node:path';

/**
 * node-llama-cpp tests a prebuilt binary before it loads it (on Linux, at every start): it forks a Node
 * process that imports node-llama-cpp again, loads the binary and initialises llama.cpp, so that a binary this
 * machine cannot run crashes that process and not the server. That costs ~0.7 s of CPU (a core, on a 2-core
 * machine, while the server itself is loading), and its answer cannot change while the binary, Node, the
 * kernel and the CPU stay the same. So a passed test is remembered in the data directory, keyed by those, and
 * the next start answers the test from it without a process.
 *
 * Only the CPU binary's: a GPU binary also depends on drivers and libraries outside the key (a driver update
 * must make the test fail and node-llama-cpp fall back, not crash the server), so it is tested every time.
 *
 * getLlama has no option for this. Its test forks `testBindingBinary.js` with `child_process.fork`, imported
 * by name, so while getLlama runs `fork` is wrapped (and the ES module binding synced): a fork of that file
 * gets a stand-in that speaks the test's messages (ready → start → loaded → test → done → exit), answering
 * them itself when the binary's key is remembered, else relaying them to the real test process and
 * remembering a pass. Every other fork goes to Node's as before. The messages are node-llama-cpp 3.21's
 * (the version is pinned); a stand-in that meets anything else relays it.
 */

const testFile = /[\\/]node-llama-cpp[\\/]dist[\\/]bindings[\\/]utils[\\/]testBindingBinary\.js$/;

interface TestMessage {
  readonly type: string;
  readonly bindingBinaryPath?: unknown;
  readonly extBackendsPath?: unknown;
  readonly gpu?: unknown;
}

/** The passed tests remembered in one file: a list of keys, newest last. */
class RememberedChecks {
  private keys: string[] = [];
  /** The write under way, awaited before getLlama's caller goes on (a second start must see it). */
  writing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

  async read(): Promise<void> {
    const text = await readFile(this.file, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    try {
      const parsed: unknown = JSON.parse(text);
      const keys = (parsed as { passed?: unknown }).passed;
      if (Array.isArray(keys)) this.keys = keys.filter((key): key is string => typeof key === 'string');
    } catch {
      // A damaged file only means testing again.
    }
  }

  has(key: string): boolean {
    return this.keys.includes(key);
  }

  async remember(key: string): Promise<void> {
    if (this.has(key)) return;
    // A few, for a data directory shared by installs (an upgrade leaves the old binary's key behind).
    this.keys = [...this.keys, key].slice(-8);
    await mkdir(dirname(this.file), { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify({ passed: this.keys }, null, 2)}\n`);
    await rename(temporary, this.file);
  }
}

/** The CPU as the binary sees it: on Linux its model and feature flags, elsewhere its model name. */
function cpuSignature(): string {
  if (platform() === 'linux') {
    try {
      const info = readFileSync('/proc/cpuinfo', 'utf8');
      const field = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1] ?? '';
      return `${field('model name')}|${field('flags') || field('Features')}`;
    } catch {
      // fall through
    }
  }
  return cpus()[0]?.model ?? 'unknown';
}

/** What a test's answer depends on, hashed; undefined for a test that is not to be remembered (a GPU binary's). */
async function keyOf(message: TestMessage): Promise<string | undefined> {
  if (message.gpu !== false || typeof message.bindingBinaryPath !== 'string') return undefined;
  const files = [message.bindingBinaryPath, ...(typeof message.extBackendsPath === 'string' ? [message.extBackendsPath] : [])];
  const stats = await Promise.all(files.map((file) => stat(file).then((found) => `${file}:${found.size}:${found.mtimeMs}`, () => undefined)));
  if (stats.includes(undefined)) return undefined;
  const parts = [...stats, process.version, process.versions.modules, arch(), platform(), release(), cpuSignature()];
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** The stand-in for the test process (see above): the parts of a ChildProcess that node-llama-cpp's test uses. */
class TestStandIn extends EventEmitter {
  exitCode: number | null = null;
  killed = false;
  readonly stdout = null;
  readonly stderr = null;
  private real: ChildProcess | undefined;
  private remembered = false;

  constructor(
    private readonly spawnReal: () => ChildProcess,
    private readonly checks: readonly RememberedChecks[],
  ) {
    super();
    // After fork returns: the caller's listeners are not attached yet.
    setImmediate(() => this.emit('message', { type: 'ready' }));
  }

  send(message: TestMessage): boolean {
    if (this.real) return this.real.send(message);
    if (this.remembered) {
      if (message.type === 'test') setImmediate(() => this.emit('message', { type: 'done' }));
      else if (message.type === 'exit') this.exited(0, null);
      else this.relay(message);
      return true;
    }
    if (message.type !== 'start') {
      this.relay(message);
      return true;
    }
    void keyOf(message).then(
      (key) => {
        if (key !== undefined && this.checks.some((checks) => checks.has(key))) {
          this.remembered = true;
          this.emit('message', { type: 'loaded' });
        } else this.relay(message, key);
      },
      () => this.relay(message),
    );
    return true;
  }

  kill(signal?: NodeJS.Signals): boolean {
    this.killed = true;
    if (this.real) return this.real.kill(signal);
    if (this.exitCode === null) this.exited(null, signal ?? 'SIGTERM');
    return true;
  }

  /** The real test process from here on; the first message is sent once it says it is ready. */
  private relay(first: TestMessage, key?: string): void {
    let passed = false;
    const real = this.spawnReal();
    this.real = real;
    real.on('message', (message: TestMessage) => {
      if (message.type === 'ready') {
        real.send(first);
        return;
      }
      if (message.type === 'done') passed = true;
      this.emit('message', message);
    });
    real.on('exit', (code, signal) => {
      if (code === 0 && passed && key !== undefined) {
        for (const checks of this.checks) checks.writing = checks.writing.then(() => checks.remember(key)).catch(() => undefined);
      }
      this.exited(code, signal);
    });
  }

  private exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.exitCode = code;
    setImmediate(() => this.emit('exit', code, signal));
  }
}

/** The remembered checks of every getLlama running now (two servers in one process, as in tests, may overlap). */
const active = new Set<RememberedChecks>();
const nodeFork = childProcess.fork;

function rememberingFork(modulePath: string | URL, args?: readonly string[] | ForkOptions, options?: ForkOptions): ChildProcess {
  const forkOptions = Array.isArray(args) ? options : (args as ForkOptions | undefined);
  const real = (): ChildProcess => Reflect.apply(nodeFork, childProcess, [modulePath, args, options]) as ChildProcess;
  if (!testFile.test(String(modulePath)) || forkOptions?.env?.['TEST_BINDING_CP'] !== 'true') return real();
  return new TestStandIn(real, [...active]) as unknown as ChildProcess;
}

/** Runs `open` (a getLlama call) with passed binary tests remembered in `file`. */
export async function withRememberedBinaryCheck<T>(file: string, open: () => Promise<T>): Promise<T> {
  const checks = new RememberedChecks(file);
  await checks.read();
  active.add(checks);
  if (active.size === 1) {
    childProcess.fork = rememberingFork as typeof childProcess.fork;
    syncBuiltinESMExports();
  }
  try {
    return await open();
  } finally {
    await checks.writing;
    active.delete(checks);
    if (active.size === 0) {
      childProcess.fork = nodeFork;
      syncBuiltinESMExports();
    }
  }
}
