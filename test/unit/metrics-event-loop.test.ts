import { Registry, collectDefaultMetrics } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Metrics } from '../../src/http/metrics.js';

const names = async (registry: Registry): Promise<string[]> => (await registry.getMetricsAsJSON()).map((metric) => metric.name).sort();

describe('the process metrics', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("serves every series of prom-client's default metrics, event-loop lag included, under the same names", async () => {
    const reference = new Registry();
    collectDefaultMetrics({ register: reference, prefix: 'parlance_process_' });
    const metrics = new Metrics(() => []);
    const served = await names(metrics.registry);
    for (const name of await names(reference)) expect(served).toContain(name);
    expect(served).toContain('parlance_process_nodejs_eventloop_lag_p99_seconds');
  });

  it('samples the event loop only while there is work: a request arms it, a check with nothing busy stops it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const metrics = new Metrics(() => []);
    expect(metrics.samplingEventLoop).toBe(false);
    let busy = true;
    metrics.sampleEventLoop(() => busy);
    expect(metrics.samplingEventLoop).toBe(true);
    vi.advanceTimersByTime(3000);
    expect(metrics.samplingEventLoop).toBe(true);
    busy = false;
    vi.advanceTimersByTime(1000);
    expect(metrics.samplingEventLoop).toBe(false);
    // Idle: nothing sampled, nothing late.
    const lag = (await metrics.registry.getSingleMetric('parlance_process_nodejs_eventloop_lag_max_seconds')?.get())?.values[0]?.value;
    expect(lag).toBe(0);
  });

  it('reports the delays sampled while busy', async () => {
    const metrics = new Metrics(() => []);
    metrics.sampleEventLoop(() => true);
    // Keep the loop blocked past a few sampling intervals.
    for (let i = 0; i < 4; i++) {
      const until = performance.now() + 60;
      while (performance.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const text = await metrics.registry.metrics();
    metrics.stopSampling();
    const max = Number(/^parlance_process_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]);
    expect(max).toBeGreaterThan(0.03);
  });
});
