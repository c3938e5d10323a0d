/** What `parlance list` and `parlance ps` print: plain columns, as `ollama list` and `ollama ps` do. */
import type { CachedModel } from '../engines/llama-cpp/model-cache.js';

/** Left-aligned columns, two spaces apart; the header row first. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

/** 1 decimal below 10 of a unit, none above: 512 B, 1.5 MB, 469 MB, 4.1 GB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const day = 86_400_000;
const ageUnits: readonly [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * day],
  ['month', 30 * day],
  ['day', day],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** "just now", "5 minutes ago", "3 days ago". */
export function formatAge(date: Date, now = Date.now()): string {
  const elapsed = Math.max(0, now - date.getTime());
  const unit = ageUnits.find(([, size]) => elapsed >= size);
  if (!unit) return 'just now';
  return new Intl.RelativeTimeFormat('en').format(-Math.floor(elapsed / unit[1]), unit[0]);
}

export function modelsTable(models: readonly CachedModel[], now = Date.now()): string {
  return formatTable(
    ['NAME', 'SIZE', 'MODIFIED', 'SOURCE'],
    models.map((model) => [model.id, formatBytes(model.bytes), formatAge(model.modified, now), model.ref]),
  );
}

/** What `/health` says of the models and engines, as `ps` reads it. */
export interface HealthReport {
  readonly loading: boolean;
  readonly demo: boolean;
  readonly models: readonly { readonly id: string; readonly engine: string; readonly context_length: number | null }[];
  readonly engines: readonly { readonly name: string; readonly active?: number; readonly queued?: number; readonly capacity?: number }[];
}

export function processesTable(health: HealthReport): string {
  const engines = new Map(health.engines.map((engine) => [engine.name, engine]));
  return formatTable(
    ['NAME', 'ENGINE', 'CONTEXT', 'BUSY', 'QUEUED'],
    health.models.map((model) => {
      const engine = engines.get(model.engine);
      const busy = engine?.active === undefined ? '-' : engine.capacity === undefined ? String(engine.active) : `${engine.active}/${engine.capacity}`;
      return [model.id, model.engine, model.context_length === null ? '-' : String(model.context_length), busy, engine?.queued === undefined ? '-' : String(engine.queued)];
    }),
  );
}
