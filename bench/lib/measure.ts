/** Small measuring helpers the benches share: order statistics and a process's CPU and memory from /proc. */
import { readFile } from 'node:fs/promises';

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? (sorted[Math.floor(mid)] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
};

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** utime + stime of a process, in ms (from /proc; clock ticks are 100 Hz on Linux). */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which is in parentheses and may contain spaces).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident memory of a process in MB: all of it, and its private (anonymous) part, which excludes the mapped model file. */
export async function processMemoryMb(pid: number): Promise<{ rssMb: number; privateMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, privateMb: kb('RssAnon') / 1024 };
}

/**
 * CPU time (utime + stime, ms) of the Chromium renderer processes this process started (descendants whose
 * command line says `--type=renderer`). CPU throttling pauses the renderer rather than making it burn more, and
 * a busy machine delays it without adding to it, so this is the page's own work, comparable across runs on a
 * loaded machine where long tasks are not.
 */
export async function rendererCpuMs(rootPid = process.pid): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const descends = (pid: number): boolean => {
    for (let at = parents.get(pid), steps = 0; at !== undefined && at > 1 && steps < 32; at = parents.get(at), steps++) if (at === rootPid) return true;
    return false;
  };
  let total = 0;
  for (const pid of parents.keys()) {
    if (!descends(pid)) continue;
    try {
      if ((await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('--type=renderer')) total += await processCpuMs(pid);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
