/**
 * /metrics for each model and upstream, as an operator's dashboard reads it: whether the engines are still
 * loading, what each engine serves, how long the model took to load, and which upstream is failing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../adversarial/helpers.js';
import { errorPlan, startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js';
import { startTestServer, type TestServer } from '../fixtures/server.js';

let healthy: FakeUpstream;
let failing: FakeUpstream;
let server: TestServer;
beforeAll(async () => {
  healthy = await startFakeUpstream({ models: ['shared'] });
  failing = await startFakeUpstream({ models: ['shared'], script: (request) => (request.method === 'POST' ? errorPlan(503, 'overloaded') : undefined) });
  server = await startTestServer({ upstreams: [`good=${healthy.url}`, `bad=${failing.url}`] });
});
afterAll(async () => {
  await server?.stop();
  await healthy?.close();
  await failing?.close();
});

const metrics = async (): Promise<string> => (await fetch(`${server.url}/metrics`)).text();

describe('/metrics per model and upstream', () => {
  it('says the engines have loaded, what each serves, and how long the model took to load', async () => {
    const text = await metrics();
    expect(metricValue(text, 'parlance_loading')).toBe(0);
    expect(metricValue(text, 'parlance_models_served', { engine: 'llama', model: 'parlance-tiny' })).toBe(1);
    expect(metricValue(text, 'parlance_models_served', { engine: 'upstreams', model: 'shared' })).toBe(1);
    expect(metricValue(text, 'parlance_model_load_seconds', { engine: 'llama', model: 'parlance-tiny' })).toBeGreaterThan(0);
  });

  it('shows the upstream that fails: cooling down, its failures counted, the healthy one untouched', async () => {
    // Requests spread over both; the failing one is retried on the healthy one, so every client gets its answer.
    for (let i = 0; i < 4 && failing.generations().length === 0; i++) {
      const response = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'shared', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(failing.generations().length).toBeGreaterThan(0);
    const text = await metrics();
    expect(metricValue(text, 'parlance_upstream_cooling_down', { upstream: 'bad' })).toBe(1);
    expect(metricValue(text, 'parlance_upstream_failures', { upstream: 'bad' })).toBe(failing.generations().length);
    expect(metricValue(text, 'parlance_upstream_cooling_down', { upstream: 'good' })).toBe(0);
    expect(metricValue(text, 'parlance_upstream_failures', { upstream: 'good' })).toBe(0);
  });
});
