/**
 * What `realserver setup` changed, so that `teardown` undoes exactly that and nothing else:
 * sysctls with their previous values, VIP addresses setup added (not those that were there
 * already), whether it brought lo up, and the decapsulation attachment. One JSON file per
 * network namespace (mode 0600 in a 0700 directory), rewritten after every single change so that
 * an interrupted setup still leaves an accurate record.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, readdirSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { acquireLockAt } from '../director/lock.js';
import { z } from 'zod';
import { StateError } from '../errors.js';
import { BPFFS, PIN_DIR_ENV, RUN_DIR, STATE_DIR_ENV, netnsSuffix, statePaths } from '../director/paths.js';
import { decapPins, type DecapPins } from './decap.js';

export const REALSERVER_BASE = 'lvs-xdp-realserver';

export interface RealserverPaths {
  pinDir: string;
  stateDir: string;
  stateFile: string;
  pins: DecapPins;
}

/**
 * Per network namespace: /sys/fs/bpf/lvs-xdp-realserver[@ns], /run/lvs-xdp/lvs-xdp-realserver[@ns].
 * The director's LVS_XDP_PIN_DIR / LVS_XDP_STATE_DIR name the director's directories, never these.
 */
export function realserverPaths(opts: { pinDir?: string; stateDir?: string } = {}): RealserverPaths {
  const directorEnv = process.env[PIN_DIR_ENV] !== undefined || process.env[STATE_DIR_ENV] !== undefined;
  let o = opts;
  if (directorEnv && (!opts.pinDir || !opts.stateDir)) {
    const pinDir = opts.pinDir ?? `${BPFFS}/${REALSERVER_BASE}${netnsSuffix()}`;
    o = { pinDir, stateDir: opts.stateDir ?? `${RUN_DIR}/${pinDir.replace(/\/+$/, '').split('/').pop()}` };
  }
  const p = statePaths(o, REALSERVER_BASE);
  return { pinDir: p.pinDir, stateDir: p.stateDir, stateFile: `${p.stateDir}/realserver.json`, pins: decapPins(p.pinDir) };
}

const Mode = z.enum(['dr', 'tun']);
const StateSchema = z.object({
  version: z.literal(1),
  vips: z.array(
    z.object({
      vip: z.string(),
      prefix: z.number().int(),
      modes: z.array(Mode),
      /** setup added the address to lo (it was not there). */
      addedToLo: z.boolean(),
      /** setup put the VIP into the decapsulation map. */
      addedToDecap: z.boolean(),
    }),
  ),
  sysctls: z.array(
    z.object({
      key: z.string(),
      previous: z.number(),
      value: z.number(),
      /** arp: needed while any IPv4 VIP is set up; rp_filter: while any IPv4 Tun VIP is. */
      reason: z.enum(['arp', 'rp_filter']),
    }),
  ),
  loBroughtUp: z.boolean(),
  decap: z.object({ dev: z.string(), mode: z.string(), progId: z.number() }).optional(),
});
export type RealserverState = z.infer<typeof StateSchema>;
export type VipRecord = RealserverState['vips'][number];

export function emptyState(): RealserverState {
  return { version: 1, vips: [], sysctls: [], loBroughtUp: false };
}

export function isEmpty(s: RealserverState): boolean {
  return s.vips.length === 0 && s.sysctls.length === 0 && !s.loBroughtUp && !s.decap;
}

export function loadState(file: string): RealserverState {
  if (!existsSync(file)) return emptyState();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new StateError(`cannot read ${file}: ${(e as Error).message}`, { hint: 'inspect it; remove it only after undoing its changes by hand' });
  }
  const parsed = StateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new StateError(`${file} is not a realserver state file: ${parsed.error.issues[0]?.message ?? 'bad shape'}`, {
      hint: 'inspect it; remove it only after undoing its changes by hand',
    });
  }
  return parsed.data;
}

/** Writes the state (0600), or removes the file (and the directory if left empty) when empty. */
export function saveState(paths: RealserverPaths, s: RealserverState): void {
  if (isEmpty(s)) {
    rmSync(paths.stateFile, { force: true });
    return;
  }
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  try {
    writeFileAtomic.sync(paths.stateFile, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  } catch (e) {
    throw new StateError(`could not write ${paths.stateFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Runs fn holding the namespace's realserver lock (one setup / teardown at a time). The lock sits
 * beside the state directory, not in it, so that an empty state directory can be removed while
 * another command waits for the lock.
 */
export async function withLock<T>(paths: RealserverPaths, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${paths.stateDir.replace(/\/+$/, '')}.lock`;
  mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
  // The director's lock implementation (a dead owner's lock is taken over at once).
  const release = await acquireLockAt(lockPath, {
    busyHint: 'another lvs-xdp realserver command is running in this network namespace; retry when it has finished',
  });
  try {
    return await fn();
  } finally {
    if (!existsSync(paths.stateFile) && existsSync(paths.stateDir) && readdirSync(paths.stateDir).length === 0) {
      rmdirSync(paths.stateDir);
    }
    release();
  }
}
