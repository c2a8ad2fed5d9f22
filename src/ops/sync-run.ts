/**
 * Connection sync inside `lvs-xdp run`: which daemons run (the configuration file's
 * settings.sync, and those started with ipvsadm's --start-daemon, recorded in the state
 * directory: the file's wins for its role), noticed within a second of a change, and what they
 * did, written for `-L --daemon`, `status` and `lvs-xdp metrics` (src/sync/state.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolveDaemon, type SyncDaemonArgs } from '../ipvsadm/daemon.js';
import type { SyncDaemonSetting } from '../model/types.js';
import type { SyncDaemons, SyncDaemonSpec, SyncDataPlane, SyncLog } from '../sync/daemons.js';
import { SYNC_DAEMONS_FILE, readSyncDaemons, removeSyncStatus, writeSyncStatus, type SyncDaemonStatus } from '../sync/state.js';

/** The interface's MTU (sync-maxlen's default follows it), 1500 when it cannot be read. */
export function interfaceMtu(iface: string): number {
  try {
    const n = Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 1500;
  } catch {
    return 1500;
  }
}

/** Pure: the daemons to run, per role the file's setting else the recorded ipvsadm one. */
export function syncSpecs(file: readonly SyncDaemonSetting[], recorded: readonly SyncDaemonArgs[], mtu: (iface: string) => number = interfaceMtu): SyncDaemonSpec[] {
  const out: SyncDaemonSpec[] = [];
  for (const role of ['master', 'backup'] as const) {
    const f = file.find((d) => d.role === role);
    if (f) {
      const args: SyncDaemonArgs = {
        role, mcastInterface: f.interface, syncid: f.syncid ?? 0,
        ...(f.maxlen !== undefined ? { syncMaxlen: f.maxlen } : {}), ...(f.group !== undefined ? { mcastGroup: f.group } : {}),
        ...(f.port !== undefined ? { mcastPort: f.port } : {}), ...(f.ttl !== undefined ? { mcastTtl: f.ttl } : {}),
      };
      out.push({
        ...resolveDaemon(args, mtu(f.interface), f.peers ?? []), source: 'file',
        ...(f.multicast !== undefined ? { multicast: f.multicast } : {}),
        ...(f.interval !== undefined ? { intervalMs: Math.round(f.interval * 1000) } : {}),
        ...(f.refresh !== undefined ? { refreshS: f.refresh } : {}),
      });
      continue;
    }
    const r = recorded.find((d) => d.role === role);
    if (r) out.push({ ...resolveDaemon(r, mtu(r.mcastInterface)), source: 'ipvsadm' });
  }
  return out;
}

export class RunSync {
  /** Loaded with the first daemon to run: a director without sync never loads the sockets'
   *  machinery (its sockets and timers; resident memory counts on a small box). */
  private daemons?: SyncDaemons;
  private timer?: NodeJS.Timeout;
  private recordedStamp = '';
  private file: readonly SyncDaemonSetting[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly stateDir: () => string, private readonly dp: SyncDataPlane, private readonly log: SyncLog) {}

  /** Starts with the file's settings; then follows the recorded daemons and writes the status every second. */
  async start(file: readonly SyncDaemonSetting[]): Promise<void> {
    await this.configure(file);
    this.timer = setInterval(() => {
      if (this.stamp() !== this.recordedStamp) void this.configure(this.file);
      this.writeStatus();
    }, 1000);
    this.timer.unref();
  }

  /** A reload: the file's settings again. */
  configure(file: readonly SyncDaemonSetting[]): Promise<void> {
    this.file = file;
    this.chain = this.chain.then(async () => {
      this.recordedStamp = this.stamp();
      let recorded: SyncDaemonArgs[] = [];
      try {
        recorded = readSyncDaemons(this.stateDir());
      } catch (e) {
        this.log.error({ event: 'sync-daemons-unreadable', error: (e as Error).message }, (e as Error).message);
      }
      const specs = syncSpecs(file, recorded);
      if (specs.length && !this.daemons) this.daemons = new (await import('../sync/daemons.js')).SyncDaemons(this.dp, this.log);
      await this.daemons?.configure(specs);
      this.writeStatus();
    });
    return this.chain;
  }

  list(): SyncDaemonStatus[] {
    return this.daemons?.list() ?? [];
  }

  flush(): Promise<number> {
    return this.daemons?.flush() ?? Promise.resolve(0);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    await this.daemons?.stop();
    removeSyncStatus(this.stateDir());
  }

  private stamp(): string {
    try {
      const s = statSync(`${this.stateDir()}/${SYNC_DAEMONS_FILE}`);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return 'none';
    }
  }

  private writeStatus(): void {
    const daemons = this.list();
    try {
      if (daemons.length === 0) removeSyncStatus(this.stateDir());
      else writeSyncStatus(this.stateDir(), { pid: process.pid, updatedAt: new Date().toISOString(), daemons });
    } catch {
      // the state directory went away (detach): the next resync says so
    }
  }
}
