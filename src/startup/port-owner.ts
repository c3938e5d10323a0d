/**
 * Which process listens on a TCP port, when Linux's /proc can tell cheaply: the socket's inode from
 * /proc/net/tcp{,6}, then the process holding a descriptor to it. Another user's processes are not
 * readable (then only "taken" is known); other systems answer undefined.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** The inodes of the sockets listening (state 0A) on the port. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9] && fields[9] !== '0') inodes.add(fields[9]);
    }
  }
  return inodes;
}

export interface PortOwner {
  readonly pid: number;
  /** The command line, shortened. */
  readonly command: string;
}

export async function portOwner(port: number): Promise<PortOwner | undefined> {
  if (process.platform !== 'linux') return undefined;
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  const pids = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!targets.has(link)) continue;
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
      return { pid: Number(pid), command: cmdline.length > 80 ? `${cmdline.slice(0, 77)}...` : cmdline || 'unknown' };
    }
  }
  return undefined;
}
