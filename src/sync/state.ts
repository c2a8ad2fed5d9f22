/**
 * Where a director's sync daemons are written down (pure but for the files):
 *   <state dir>/sync-daemons.json   the daemons started with ipvsadm's --start-daemon (lvs-xdp
 *                                   syntax), as given; --stop-daemon removes one. `run` reads it
 *                                   (it notices a change within a second) together with the
 *                                   configuration file's settings.sync, the file's winning per role.
 *   <state dir>/sync-status.json    what `run` is running now, with its counts: `-L --daemon`,
 *                                   `status` and `lvs-xdp metrics` read it.
 * IPVS keeps the daemons in the kernel; lvs-xdp's sync runs inside `run`, so a daemon started
 * while no run runs is recorded and starts with the next run (the command says so).
 */
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.js';
import { readRunHolder, holderAlive } from '../ops/runlock.js';
import type { SyncDaemonArgs, SyncDaemonConfig, SyncRole } from '../ipvsadm/daemon.js';

export const SYNC_DAEMONS_FILE = 'sync-daemons.json';
export const SYNC_STATUS_FILE = 'sync-status.json';

export interface SyncDaemonsDoc {
  daemons: SyncDaemonArgs[];
  updatedAt: string;
}

/** One running daemon's counts (master: what it sent; backup: what it received and inserted). */
export interface SyncDaemonStatus extends SyncDaemonConfig {
  /** Where this daemon's settings come from. */
  source: 'file' | 'ipvsadm';
  since: string;
  /** master */
  sent?: { messages: number; conns: number; templates: number; sendErrors: number; batches: number; lastAt?: string; lastBatch: number; lastSendMs: number; intervalMs: number };
  /** backup */
  received?: {
    messages: number; conns: number; inserted: number; invalid: number; filtered: number; droppedEntries: number;
    skipped: Record<string, number>; lastAt?: string; lastFrom?: string; lastInsertMs: number;
  };
  /** The socket could not be opened (e.g. the interface has no address yet): retried. */
  error?: string;
}

export interface SyncStatusDoc {
  pid: number;
  updatedAt: string;
  daemons: SyncDaemonStatus[];
}

function readJson<T>(path: string, what: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new StateError(`${path}: ${what} cannot be read: ${(e as Error).message}`);
  }
}

function writeJson(path: string, doc: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc)}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

export function readSyncDaemons(stateDir: string): SyncDaemonArgs[] {
  return readJson<SyncDaemonsDoc>(join(stateDir, SYNC_DAEMONS_FILE), 'the recorded sync daemons')?.daemons ?? [];
}

/** --start-daemon: records (replacing the same role's); returns the new list. */
export function recordSyncDaemon(stateDir: string, d: SyncDaemonArgs, now = new Date().toISOString()): SyncDaemonArgs[] {
  const daemons = [...readSyncDaemons(stateDir).filter((x) => x.role !== d.role), d];
  writeJson(join(stateDir, SYNC_DAEMONS_FILE), { daemons, updatedAt: now } satisfies SyncDaemonsDoc);
  return daemons;
}

/** --stop-daemon: false when no daemon of that role was recorded. */
export function removeSyncDaemon(stateDir: string, role: SyncRole, now = new Date().toISOString()): boolean {
  const all = readSyncDaemons(stateDir);
  const daemons = all.filter((x) => x.role !== role);
  if (daemons.length === all.length) return false;
  const path = join(stateDir, SYNC_DAEMONS_FILE);
  if (daemons.length === 0) unlinkSync(path);
  else writeJson(path, { daemons, updatedAt: now } satisfies SyncDaemonsDoc);
  return true;
}

export function readSyncStatus(stateDir: string): SyncStatusDoc | undefined {
  try {
    return readJson<SyncStatusDoc>(join(stateDir, SYNC_STATUS_FILE), 'the sync status');
  } catch {
    return undefined; // being replaced: the next read has it
  }
}

/** The daemons of the `lvs-xdp run` running now (none when it stopped or was killed: the run
 *  lock's holder, pid and start time, is the run that wrote them). */
export function runningSyncDaemons(stateDir: string): SyncDaemonStatus[] {
  const h = readRunHolder(stateDir);
  const st = h && holderAlive(h) ? readSyncStatus(stateDir) : undefined;
  return st && st.pid === h!.pid ? st.daemons : [];
}

export function writeSyncStatus(stateDir: string, doc: SyncStatusDoc): void {
  writeJson(join(stateDir, SYNC_STATUS_FILE), doc);
}

export function removeSyncStatus(stateDir: string): void {
  try {
    unlinkSync(join(stateDir, SYNC_STATUS_FILE));
  } catch {
    // not there
  }
}
