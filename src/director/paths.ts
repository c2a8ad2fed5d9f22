/**
 * Where a running director keeps its state: pinned BPF objects under a bpffs directory, and the
 * msgpackr snapshot plus the lock in a directory of ordinary files beside it (bpffs holds only
 * BPF objects). Both are per network namespace, because interfaces (ifindexes) are: a director
 * in a named namespace (`ip netns add NS`) gets its own directories by default, so
 * `nsenter --net=/run/netns/NS lvs-xdp -L -n` finds the director of NS.
 */
import { readdirSync, statSync } from 'node:fs';

export const PIN_DIR_ENV = 'LVS_XDP_PIN_DIR';
export const STATE_DIR_ENV = 'LVS_XDP_STATE_DIR';
export const BPFFS = '/sys/fs/bpf';
export const RUN_DIR = '/run/lvs-xdp';

export interface StatePaths {
  /** bpffs directory holding the pinned maps, program and links. */
  pinDir: string;
  /** Directory holding the snapshot and the lock. */
  stateDir: string;
  snapshot: string;
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * '' unless this process runs in a named network namespace (one `ip netns add` made, listed in
 * /run/netns) other than pid 1's; then '@' + its name. Unnamed namespaces (containers) keep the
 * plain default, as every other tool there would.
 */
export function netnsSuffix(): string {
  const self = inode('/proc/self/ns/net');
  if (self === undefined || self === inode('/proc/1/ns/net')) return '';
  try {
    for (const name of readdirSync('/run/netns')) {
      if (inode(`/run/netns/${name}`) === self) return `@${name}`;
    }
  } catch {
    // no named namespaces
  }
  return '';
}

/**
 * The state paths for `base` ('lvs-xdp' for the director): an explicit option first, then the
 * environment, then the per-namespace default (/sys/fs/bpf/BASE[@ns], /run/lvs-xdp/BASE[@ns]).
 */
export function statePaths(opts: { pinDir?: string; stateDir?: string } = {}, base = 'lvs-xdp'): StatePaths {
  const ns = opts.pinDir || process.env[PIN_DIR_ENV] ? undefined : netnsSuffix();
  const pinDir = opts.pinDir || process.env[PIN_DIR_ENV] || `${BPFFS}/${base}${ns}`;
  const leaf = pinDir.replace(/\/+$/, '').split('/').pop() || base;
  const stateDir = opts.stateDir || process.env[STATE_DIR_ENV] || `${RUN_DIR}/${leaf}`;
  return { pinDir, stateDir, snapshot: `${stateDir}/state.msgpack` };
}
