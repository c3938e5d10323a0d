/**
 * Config files, JSON or YAML, including hostile ones: every failure is one ConfigError line naming the
 * file and what is wrong, and a YAML file starts the real server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, readConfigFile, resolveConfig } from '../../src/config/load.js';
import { startChild } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parlance-config-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('config files', () => {
  it('reads YAML (.yaml and .yml) and JSON to the same configuration', async () => {
    const yaml = await file('a.yaml', 'port: 9001\nsequences: 2\napiKeys:\n  - ci=0123456789abcdef0123\nupstreams:\n  - name: vllm\n    baseUrl: http://127.0.0.1:8001/v1\n');
    const yml = await file('a.yml', 'port: 9001\nsequences: 2\n');
    const json = await file('a.json', '{"port": 9001, "sequences": 2}');
    const fromYaml = resolveConfig({ file: await readConfigFile(yaml) });
    expect(fromYaml).toMatchObject({ port: 9001, sequences: 2, apiKeys: [{ name: 'ci', key: '0123456789abcdef0123' }] });
    expect(fromYaml.upstreams[0]).toMatchObject({ name: 'vllm' });
    expect(resolveConfig({ file: await readConfigFile(yml) })).toMatchObject({ port: 9001, sequences: 2 });
    expect(resolveConfig({ file: await readConfigFile(json) })).toMatchObject({ port: 9001, sequences: 2 });
  });

  it.each([
    ['bad.yaml', 'port: [1, 2\n', /not valid YAML/],
    ['list.yaml', '- port\n- 9000\n', /must hold a YAML object/],
    ['scalar.yml', 'just text\n', /must hold a YAML object/],
    ['empty.yaml', '', /must hold a YAML object/],
    ['bad.json', '{"port": 9000,}', /not valid JSON/],
    ['null.json', 'null', /must hold a JSON object/],
  ])('refuses %s with one clear error', async (name, text, message) => {
    await expect(readConfigFile(await file(name, text))).rejects.toThrow(message);
    await expect(readConfigFile(await file(name, text))).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses a YAML alias bomb instead of expanding it', async () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) levels.push(`l${i}: &l${i} [${Array.from({ length: 10 }, () => (i === 1 ? '*a' : `*l${i - 1}`)).join(',')}]`);
    await expect(readConfigFile(await file('bomb.yaml', `${levels.join('\n')}\n`))).rejects.toBeInstanceOf(ConfigError);
  });

  it('names the option when a YAML value is wrong, and refuses unknown keys', async () => {
    expect(() => resolveConfig({ file: { port: 'eighty' } })).toThrow(/port \(--port, PARLANCE_PORT\)/);
    const typo = await readConfigFile(await file('typo.yaml', 'prot: 9000\n'));
    expect(() => resolveConfig({ file: typo })).toThrow(/prot/);
  });

  it('starts the server from a YAML file given to --config', async () => {
    const config = await file('serve.yaml', `embedded: false\nscripted: true\ndataDir: ${JSON.stringify(join(dir, 'data'))}\nlogLevel: warn\nmodelAlias: ignored-without-embedded\n`);
    const child = await startChild(['--config', config]);
    try {
      const health = (await (await fetch(`${child.url}/health`)).json()) as { models: { id: string }[] };
      expect(health.models.map((model) => model.id)).toEqual(['parlance-scripted']);
    } finally {
      child.child.kill('SIGTERM');
      expect(await child.exited(10_000)).toBe(0);
    }
  });
});
