/**
 * The sync daemons inside `lvs-xdp run` (IPVS's master and backup sync threads):
 *   master: every `intervalMs` it takes the connection events the data plane queued
 *     (src/sync/events.ts: new, changed and refreshed entries, with their persistence templates)
 *     and sends them as IPVS version 1 messages to the group and the unicast peers;
 *   backup: it receives messages (syncid filtered as the kernel does) and inserts their entries
 *     into the connection table and templates (src/sync/insert.ts), so that flows of any
 *     scheduler keep their realserver after a failover.
 * A director may run both at once (as IPVS allows): in an active/standby pair both directors do,
 * and the one that forwards is the one whose master has something to send. A daemon whose socket
 * cannot be opened (its interface has no address yet) is retried every second, not fatal.
 */
import type { SyncDaemonConfig, SyncRole } from '../ipvsadm/daemon.js';
import { IP_VS_CONN_F, type SyncConn, type SyncMessage } from './proto.js';
import { SyncReceiver, SyncSender, type SyncEndpoint } from './transport.js';
import type { SyncDaemonStatus } from './state.js';

/** The data plane's side, as run wires it (the director's event ring and connection table). */
export interface SyncDataPlane {
  /** Turns the data plane's sync events on (refresh period in seconds) and opens their reader. */
  openEvents(refreshS: number): Promise<{ read(): SyncConn[]; close(): void }>;
  /** Turns them off again (no master left). */
  stopEvents(): Promise<void>;
  /** Inserts received entries; counts what was skipped and why. */
  insert(conns: readonly SyncConn[]): { inserted: number; skipped: Record<string, number> };
}

export interface SyncDaemonSpec extends SyncDaemonConfig {
  source: 'file' | 'ipvsadm';
  /** lvs-xdp extension: false sends / listens to the unicast peers only. */
  multicast?: boolean;
  /** master: how often queued events are sent (ms). */
  intervalMs?: number;
  /** master: established entries are sent again this often while they live (s). */
  refreshS?: number;
}

export const DEFAULT_SYNC_INTERVAL_MS = 200;
/**
 * Established entries are sent again this often: a director that (re)starts its backup learns
 * every live connection within it (keepalived's preempt_delay must be longer, README), and far
 * below every timeout (TCP 900 s, persistence 300 s by default) so copies never lapse.
 */
export const DEFAULT_SYNC_REFRESH_S = 10;

interface Running {
  spec: SyncDaemonSpec;
  status: SyncDaemonStatus;
  sender?: SyncSender;
  receiver?: SyncReceiver;
  timer?: NodeJS.Timeout;
  events?: { read(): SyncConn[]; close(): void };
  busy?: boolean;
}

export interface SyncLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const same = (a: SyncDaemonSpec, b: SyncDaemonSpec): boolean => JSON.stringify(a) === JSON.stringify(b);

export class SyncDaemons {
  private readonly running = new Map<SyncRole, Running>();
  private retryTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly dp: SyncDataPlane, private readonly log: SyncLog) {}

  /** Starts, restarts (settings changed) and stops daemons so that exactly `specs` run. */
  async configure(specs: readonly SyncDaemonSpec[]): Promise<void> {
    for (const [role, r] of [...this.running]) {
      const want = specs.find((s) => s.role === role);
      if (!want || !same(want, r.spec)) await this.stopRole(role, want ? 'settings changed' : 'stopped');
    }
    for (const s of specs) if (!this.running.has(s.role)) await this.startRole(s);
    this.scheduleRetry();
  }

  list(): SyncDaemonStatus[] {
    return (['master', 'backup'] as const).flatMap((r) => (this.running.has(r) ? [this.running.get(r)!.status] : []));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.retryTimer);
    for (const role of [...this.running.keys()]) await this.stopRole(role, 'run stopped');
  }

  /** Master: sends what is queued now (a planned switchover flushes before the VIPs move). */
  async flush(): Promise<number> {
    const m = this.running.get('master');
    return m ? this.sendBatch(m) : 0;
  }

  private async startRole(spec: SyncDaemonSpec): Promise<void> {
    const status: SyncDaemonStatus = {
      role: spec.role, mcastInterface: spec.mcastInterface, syncid: spec.syncid, syncMaxlen: spec.syncMaxlen, mcastGroup: spec.mcastGroup,
      mcastPort: spec.mcastPort, mcastTtl: spec.mcastTtl, peers: [...spec.peers], source: spec.source, since: new Date().toISOString(),
    };
    const r: Running = { spec, status };
    this.running.set(spec.role, r);
    await this.open(r);
  }

  /** Opens the socket (and, for a master, the event reader); on failure leaves `error` for the retry. */
  private async open(r: Running): Promise<void> {
    const s = r.spec;
    try {
      if (s.role === 'master') {
        const sender = await SyncSender.open({
          interface: s.mcastInterface, syncid: s.syncid, group: s.mcastGroup, port: s.mcastPort, ttl: s.mcastTtl, maxLen: s.syncMaxlen,
          multicast: s.multicast !== false, peers: s.peers,
        });
        r.sender = sender;
        r.events = await this.dp.openEvents(s.refreshS ?? DEFAULT_SYNC_REFRESH_S);
        const intervalMs = s.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
        r.status.sent = { messages: 0, conns: 0, templates: 0, sendErrors: 0, batches: 0, lastBatch: 0, lastSendMs: 0, intervalMs };
        r.timer = setInterval(() => void this.sendBatch(r), intervalMs);
      } else {
        r.status.received = { messages: 0, conns: 0, inserted: 0, invalid: 0, filtered: 0, droppedEntries: 0, skipped: {}, lastInsertMs: 0 };
        r.receiver = await SyncReceiver.open({
          interface: s.mcastInterface, syncid: s.syncid, group: s.mcastGroup, port: s.mcastPort, maxLen: s.syncMaxlen,
          multicast: s.multicast !== false,
          onMessage: (msg, from) => this.onMessage(r, msg, from),
          onDrop: (reason, from) => this.log.warn({ event: 'sync-dropped', from: from.address, reason }, `sync: a message from ${from.address} dropped: ${reason}`),
        });
      }
      delete r.status.error;
      this.log.info({ event: 'sync-started', role: s.role, interface: s.mcastInterface, syncid: s.syncid, group: s.mcastGroup, port: s.mcastPort, peers: s.peers },
        `${s.role} sync daemon started (mcast=${s.mcastInterface}, syncid=${s.syncid}, group=${s.mcastGroup}, port=${s.mcastPort}${s.peers.length ? `, peers=${s.peers.join(',')}` : ''})`);
    } catch (e) {
      this.close(r);
      const msg = (e as Error).message;
      if (r.status.error !== msg) this.log.error({ event: 'sync-failed', role: s.role, error: msg }, `${s.role} sync daemon cannot start (retrying every second): ${msg}`);
      r.status.error = msg;
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setInterval(() => {
      const failed = [...this.running.values()].filter((r) => r.status.error !== undefined);
      if (failed.length === 0) {
        clearInterval(this.retryTimer);
        this.retryTimer = undefined;
        return;
      }
      for (const r of failed) void this.open(r);
    }, 1000);
    this.retryTimer.unref();
  }

  private async sendBatch(r: Running): Promise<number> {
    if (!r.sender || !r.events || r.busy) return 0;
    r.busy = true;
    const t0 = performance.now();
    try {
      const conns = r.events.read();
      if (conns.length === 0) return 0;
      const sent = r.status.sent!;
      const n = await r.sender.send(conns);
      sent.messages += n;
      sent.batches++;
      sent.lastBatch = conns.length;
      for (const c of conns) {
        if (c.flags & IP_VS_CONN_F.TEMPLATE) sent.templates++;
        else sent.conns++;
      }
      sent.sendErrors = r.sender.stats.sendErrors;
      sent.lastAt = new Date().toISOString();
      sent.lastSendMs = performance.now() - t0;
      return conns.length;
    } catch (e) {
      this.log.error({ event: 'sync-send-failed', error: (e as Error).message }, `sync: sending failed: ${(e as Error).message}`);
      return 0;
    } finally {
      r.busy = false;
    }
  }

  private onMessage(r: Running, msg: SyncMessage, from: SyncEndpoint): void {
    const rec = r.status.received!;
    const st = r.receiver!.stats;
    rec.messages = st.accepted;
    rec.invalid = st.invalid;
    rec.filtered = st.filtered;
    rec.droppedEntries = st.droppedEntries;
    rec.conns += msg.conns.length;
    rec.lastAt = new Date().toISOString();
    rec.lastFrom = from.address;
    const t0 = performance.now();
    try {
      const res = this.dp.insert(msg.conns);
      rec.inserted += res.inserted;
      for (const [k, v] of Object.entries(res.skipped)) rec.skipped[k] = (rec.skipped[k] ?? 0) + v;
    } catch (e) {
      rec.skipped['insert-failed'] = (rec.skipped['insert-failed'] ?? 0) + msg.conns.length;
      this.log.error({ event: 'sync-insert-failed', error: (e as Error).message }, `sync: inserting ${msg.conns.length} entries failed: ${(e as Error).message}`);
    }
    rec.lastInsertMs = performance.now() - t0;
  }

  private close(r: Running): void {
    clearInterval(r.timer);
    r.timer = undefined;
    r.sender?.close();
    r.sender = undefined;
    r.receiver?.close();
    r.receiver = undefined;
    if (r.events) {
      r.events.close();
      r.events = undefined;
    }
  }

  private async stopRole(role: SyncRole, why: string): Promise<void> {
    const r = this.running.get(role);
    if (!r) return;
    if (role === 'master') await this.sendBatch(r); // what is queued still goes out
    const wasMaster = role === 'master' && r.events !== undefined;
    this.close(r);
    this.running.delete(role);
    if (wasMaster) {
      try {
        await this.dp.stopEvents();
      } catch (e) {
        this.log.warn({ event: 'sync-events-off-failed', error: (e as Error).message }, `sync: cannot turn the data plane's events off: ${(e as Error).message}`);
      }
    }
    this.log.info({ event: 'sync-stopped', role, why }, `${role} sync daemon stopped (${why})`);
  }
}

