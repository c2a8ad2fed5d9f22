/**
 * A running director: the pinned program, maps and links under the pin directory plus the
 * snapshot beside them. Every CLI call is a separate process that opens the director from
 * there; the library API (`import { Director } from 'lvs-xdp'`) is this class.
 *
 * Changes are applied as a diff against what is running, in an order chosen so that no packet
 * sees a half-written state: realserver slots first (new ones are unreferenced until a table
 * names them), then each changed service's table into its spare lvs_tables slot followed by
 * one update of the service entry (the switch), then removals. Mutations hold a lock, so two
 * processes at once are serialized.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, unlinkSync, chmodSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  BpfMap, XdpLink, xdpQuery, ifIndex, openPinned, closeFd, progInfo, pinObject, possibleCpus, type XdpMode,
} from '../native/index.js';
import { StateError, NotAttachedError, BpffsError, ConfigError, translateNativeError } from '../errors.js';
import { decode, SVC, REAL, STATS, FLOW_KEY, CONN, CFG } from '../abi/layout.js';
import { vipFilterWords, vipWordValue } from '../dataplane/vipfilter.js';
import { ABI, COUNTERS } from '../abi/generated.js';
import {
  loadDirector, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, DIRECTOR_MAPS,
  type DirectorMap, type DirectorSizes, type Knobs,
} from '../dataplane/loader.js';
import {
  compileDirector, emptyAllocation, realId, serviceKey, DEFAULT_TIMEOUTS, type Allocation, type CompiledDirector, type L2Next,
} from '../dataplane/compile.js';
import { validateConfig } from '../model/validate.js';
import { compareServices, serviceId, emptyConfig, type DirectorConfig, type VirtualService, type Realserver, type TimeoutSettings } from '../model/types.js';
import { formatAddress, parseAddress } from '../model/address.js';
import { applyCommands, type IpvsadmCommand } from '../ipvsadm/index.js';
import { diffConfig, tableMovesFor, formatDiff, type Change, type DiffReport } from '../diff/index.js';
import { statePaths, type StatePaths } from './paths.js';
import {
  readSnapshot, writeSnapshot, removeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
  type Snapshot, type AppliedState,
} from './snapshot.js';
import { resolveAll, tunnelSources } from './neigh.js';
import { acquireLock } from './lock.js';
import { VERSION } from '../version.js';


const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_INNER_MAP = 0x1000;
const PROG_PIN = 'prog_lvs_director';
const LINK_PREFIX = 'link_';

export interface DirectorOptions {
  /** bpffs directory of the pinned state (default /sys/fs/bpf/lvs-xdp, env LVS_XDP_PIN_DIR). */
  pinDir?: string;
  /** Directory of the snapshot and lock (default /run/lvs-xdp/<pin dir name>, env LVS_XDP_STATE_DIR). */
  stateDir?: string;
}

export type SizePreset = 'default' | 'small';
export interface AttachOptions extends DirectorOptions {
  mode?: XdpMode;
  /** Map sizes, fixed at the first attach (a preset and/or explicit values). */
  sizes?: Partial<DirectorSizes>;
  preset?: SizePreset;
  knobs?: Partial<Knobs>;
  /** Replace a foreign XDP program already attached to the interface. */
  force?: boolean;
}

export interface ApplyOptions {
  /** Compute and report only. */
  dryRun?: boolean;
  /** Resolve every realserver's MAC again instead of reusing what the snapshot has. */
  refresh?: boolean;
}

export interface ApplyResult {
  changes: Change[];
  /** serviceId -> share of table slots (so of new flows) that move to another realserver. */
  moves: Map<string, number>;
  report: DiffReport;
  text: string;
  applied: boolean;
}

export interface InterfaceStatus { name: string; ifindex: number; mode: string; attachedAt: string; linked: boolean }
export interface MapUsage { name: string; maxEntries: number; memlock: number }
export interface DirectorStatus {
  attached: boolean;
  pinDir: string;
  stateDir: string;
  interfaces: InterfaceStatus[];
  program?: { id: number; name: string; tag: string; jitedLen: number };
  sizes?: DirectorSizes;
  knobs?: Knobs;
  services: number;
  realservers: number;
  connections?: { entries: number; max: number; evicted: number };
  memoryBytes?: number;
  maps?: MapUsage[];
  version: string;
  createdAt?: string;
  updatedAt?: string;
  pendingApply?: string;
}

export interface Numbers { packets: bigint; bytes: bigint; conns: bigint }
export interface RealserverStats extends Numbers { address: string; port: number; weight: number; active: number; inactive: number }
export interface ServiceStats extends Numbers { id: string; realservers: RealserverStats[] }
export interface StatsSample {
  /** CLOCK_MONOTONIC ns when read (the clock the data plane stamps connections with). */
  at: bigint;
  services: ServiceStats[];
  counters: Record<string, bigint>;
  /** Connection-table fill; `evicted`: entries the LRU pushed out since load (table too small). */
  connections: { entries: number; max: number; evicted: number };
}

export interface ConnectionInfo {
  protocol: 'tcp' | 'udp';
  state: string;
  /** Seconds until the entry times out. */
  expire: number;
  client: { address: string; port: number };
  virtual: { address: string; port: number };
  realserver: { address: string; port: number } | undefined;
  service: string | undefined;
}

export const STATE_NAMES = ['NONE', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'UDP'] as const;

/**
 * Fault injection for the crash tests: LVS_XDP_KILL_AT=<step> makes the process SIGKILL itself
 * when it reaches that step (a name like `table-switch`, optionally `name#n` for the n-th time).
 */
const KILL_AT = process.env.LVS_XDP_KILL_AT;
const faultSeen = new Map<string, number>();
function faultPoint(step: string): void {
  if (!KILL_AT) return;
  const n = (faultSeen.get(step) ?? 0) + 1;
  faultSeen.set(step, n);
  if (KILL_AT === step || KILL_AT === `${step}#${n}`) process.kill(process.pid, 'SIGKILL');
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}


function digest(fingerprint: string, value: Buffer): string {
  return createHash('sha256').update(fingerprint).update(value).digest('hex');
}

/** lvs_reals value without the flags word: what must not change under an established flow. */
function forwardingBytes(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  const flags = REAL.fields.find((f) => f.name === 'flags')!;
  b.fill(0, flags.offset, flags.offset + flags.size);
  return b.toString('hex');
}

function emptyApplied(): AppliedState {
  return { config: emptyConfig(), allocation: emptyAllocation(), l2: {}, digests: {}, reals: {} };
}

function isBpffs(dir: string): boolean {
  try {
    // BPF_FS_MAGIC: statfs is not in node; a bpffs directory refuses regular files, so test the mount table.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    let best = '';
    let type = '';
    for (const m of mounts) {
      const mp = m[1];
      if (mp && (dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length >= best.length) {
        best = mp;
        type = m[2] ?? '';
      }
    }
    return type === 'bpf';
  } catch {
    return false;
  }
}

/** Interfaces with a pinned XDP link in `pinDir` (`link_<ifname>`). */
function pinnedLinks(pinDir: string): string[] {
  return existsSync(pinDir) ? readdirSync(pinDir).filter((f) => f.startsWith(LINK_PREFIX)).map((f) => f.slice(LINK_PREFIX.length)) : [];
}

/** Detaches the XDP link pinned at `pin` (if it still holds one) and removes the pin. */
function releaseLinkPin(pin: string): void {
  try {
    const link = XdpLink.fromPin(pin);
    try {
      link.detach();
    } catch {
      // the interface is gone: its link went with it
    } finally {
      link.close();
    }
  } catch {
    // a defunct link pin
  }
  unlinkSync(pin);
}

/** After the last detach (lock released): the state directory goes too. */
function removeStateDir(paths: StatePaths): void {
  try {
    rmSync(paths.stateDir, { recursive: true, force: true });
  } catch {
    // a mount point (or busy): leave the directory, empty
    for (const f of readdirSync(paths.stateDir)) rmSync(`${paths.stateDir}/${f}`, { recursive: true, force: true });
  }
}

async function withLock<T>(paths: StatePaths, fn: () => Promise<T> | T): Promise<T> {
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(paths.stateDir, 0o700);
  const release = await acquireLock(paths.stateDir);
  try {
    return await fn();
  } finally {
    release();
  }
}

export class Director {
  private maps: Record<DirectorMap, BpfMap>;
  private snapMtime = -1;
  private constructor(readonly paths: StatePaths, private snap: Snapshot) {
    this.maps = Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, BpfMap.fromPin(`${paths.pinDir}/${m}`)])) as Record<DirectorMap, BpfMap>;
  }

  /** Whether a director is running (its snapshot exists) for these paths. */
  static exists(opts: DirectorOptions = {}): boolean {
    const p = statePaths(opts).snapshot;
    try {
      statSync(p);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw translateNativeError(e, { action: `read ${p}`, path: p });
    }
  }

  /** Opens the running director; NotAttachedError when there is none. */
  static open(opts: DirectorOptions = {}): Director {
    const paths = statePaths(opts);
    const snap = readSnapshot(paths.snapshot);
    if (!snap) {
      throw new NotAttachedError(`no director is attached (no state at ${paths.snapshot})`, {
        hint: 'attach one with `lvs-xdp attach IFACE`; a director in another network namespace or pin directory needs --pin-dir / LVS_XDP_PIN_DIR',
      });
    }
    for (const m of DIRECTOR_MAPS) {
      if (!existsSync(`${paths.pinDir}/${m}`)) {
        throw new StateError(`pinned map ${paths.pinDir}/${m} is missing although ${paths.snapshot} exists`, {
          hint: 'the pinned state was removed behind lvs-xdp\'s back: `lvs-xdp detach` cleans up, then attach again',
        });
      }
    }
    return new Director(paths, snap);
  }

  /**
   * Attaches the director to an interface: loads and pins the program and maps on first use,
   * or attaches the running program to one more interface. Refuses an interface that already
   * has another XDP program unless `force`.
   */
  static async attach(ifname: string, opts: AttachOptions = {}): Promise<Director> {
    const paths = statePaths(opts);
    return withLock(paths, async () => {
      const ifindex = ifIndex(ifname);
      const parent = paths.pinDir.replace(/\/[^/]+\/?$/, '') || '/';
      if (!isBpffs(parent)) {
        throw new BpffsError(`${parent} is not a BPF file system, so ${paths.pinDir} cannot hold pinned maps`, {
          hint: 'mount it: mount -t bpf bpf /sys/fs/bpf (inside `ip netns exec` /sys is remounted: use nsenter --net=/run/netns/NS instead)',
        });
      }
      let snap = readSnapshot(paths.snapshot);
      if (!snap) snap = await Director.create(paths, opts);
      const progFd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
      try {
        const linkPin = `${paths.pinDir}/${LINK_PREFIX}${ifname}`;
        if (snap.interfaces[ifname] && existsSync(linkPin)) {
          throw new StateError(`lvs-xdp is already attached to ${ifname}`, { hint: 'detach it first to change the mode' });
        }
        if (existsSync(linkPin)) unlinkSync(linkPin); // left by a killed attach
        // Our program on the interface without a pinned link: the link of a killed attach (or of
        // the pin just removed), which the kernel releases asynchronously. Give it a moment.
        for (let i = 0; i < 50; i++) {
          const q0 = xdpQuery(ifname);
          if (![q0.driverProgId, q0.skbProgId].includes(snap.progId)) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        const q = xdpQuery(ifname);
        const foreign = [q.driverProgId, q.skbProgId, q.hwProgId].find((id) => id && id !== snap.progId);
        if (foreign) {
          if (!opts.force) {
            throw new StateError(`${ifname} already has an XDP program attached (id ${foreign}) that is not this director's`, {
              hint: 'detach it (ip link set dev IFACE xdp off) or pass --force to replace it',
            });
          }
          detachForeign(ifindex, ifname, foreign);
        }
        faultPoint('before-link');
        const link = XdpLink.attach(progFd, ifname, opts.mode ?? 'auto');
        try {
          faultPoint('link-attached');
          link.pin(linkPin);
          faultPoint('link-pinned');
        } finally {
          link.close();
        }
        BpfMap.fromPin(`${paths.pinDir}/lvs_tx_ports`).update(u32(ifindex), u32(ifindex));
        snap.interfaces[ifname] = { ifindex, mode: link.mode, attachedAt: new Date().toISOString() };
        writeSnapshot(paths.snapshot, snap);
      } finally {
        closeFd(progFd);
      }
      return new Director(paths, snap);
    });
  }

  /** First attach: load, pin maps and program, write an empty snapshot. */
  private static async create(paths: StatePaths, opts: AttachOptions): Promise<Snapshot> {
    if (existsSync(paths.pinDir)) {
      // Pins without a snapshot: a killed first attach. Nothing references them; start over.
      for (const f of readdirSync(paths.pinDir)) unlinkSync(`${paths.pinDir}/${f}`);
    } else {
      mkdirSync(paths.pinDir, { mode: 0o700 });
    }
    const sizes: DirectorSizes = { ...(opts.preset === 'small' ? SMALL_BOX_SIZES : DEFAULT_SIZES), ...opts.sizes };
    const knobs: Knobs = { ...DEFAULT_KNOBS, ...opts.knobs };
    const d = await loadDirector({ sizes, knobs });
    try {
      for (const m of DIRECTOR_MAPS) {
        pinObject(d.maps[m], `${paths.pinDir}/${m}`);
        faultPoint('map-pinned');
      }
      pinObject(d.progFd, `${paths.pinDir}/${PROG_PIN}`);
      faultPoint('prog-pinned');
      const now = new Date().toISOString();
      const snap: Snapshot = {
        format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, tool: VERSION, createdAt: now, updatedAt: now,
        sizes, knobs, progId: progInfo(d.progFd).id, interfaces: {}, applied: emptyApplied(),
      };
      // Runtime settings from the start, so a director with no services still has sane timeouts.
      const compiled = compileDirector(emptyConfig(), () => undefined, { maxServices: 1, maxReals: 1, maxTableSize: 1 });
      BpfMap.fromFd(d.maps.lvs_cfg, { owned: false, keepAlive: d.obj }).update(u32(0), compiled.cfg);
      writeSnapshot(paths.snapshot, snap);
      return snap;
    } catch (e) {
      for (const f of readdirSync(paths.pinDir)) unlinkSync(`${paths.pinDir}/${f}`);
      throw e;
    } finally {
      d.obj.close();
    }
  }

  /**
   * Re-reads the snapshot when another process changed it since (a long-lived Director, e.g.
   * `lvs-xdp run` or an embedding daemon, sees changes made with the CLI).
   */
  private fresh(): Snapshot {
    try {
      const m = statSync(this.paths.snapshot).mtimeMs;
      if (m !== this.snapMtime) {
        const s = readSnapshot(this.paths.snapshot);
        if (s) this.snap = s;
        this.snapMtime = m;
      }
    } catch {
      // detached meanwhile: keep what we have; map operations will say so
    }
    return this.snap;
  }

  /** The L2 next hop the data plane sends a service's realserver to (DR: its MAC; Tun: the next hop's). */
  nextHop(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, rs: Pick<Realserver, 'address'>): L2Next | undefined {
    return this.fresh().applied.l2[realId(svc, rs)];
  }

  /** The configuration the data plane runs. */
  get config(): DirectorConfig {
    return this.fresh().applied.config;
  }

  get sizes(): DirectorSizes {
    return this.snap.sizes;
  }

  get interfaces(): string[] {
    return Object.keys(this.snap.interfaces);
  }

  close(): void {
    for (const m of Object.values(this.maps)) m.close();
  }

  /** Detaches from `ifname` (or every interface); the last one removes every pinned object and the snapshot. */
  async detach(ifname?: string): Promise<{ detached: string[]; removed: boolean }> {
    const r = await withLock(this.paths, () => this.detachLocked(ifname));
    if (r.removed) removeStateDir(this.paths);
    return r;
  }

  private detachLocked(ifname?: string): { detached: string[]; removed: boolean } {
    {
      const snap = readSnapshot(this.paths.snapshot) ?? this.snap;
      const linkPins = pinnedLinks(this.paths.pinDir);
      const known = [...new Set([...Object.keys(snap.interfaces), ...linkPins])];
      if (ifname !== undefined && !known.includes(ifname)) {
        throw new NotAttachedError(`lvs-xdp is not attached to ${ifname}`, { hint: `attached: ${known.join(', ') || 'none'}` });
      }
      const targets = ifname === undefined ? known : [ifname];
      for (const name of targets) {
        const pin = `${this.paths.pinDir}/${LINK_PREFIX}${name}`;
        if (existsSync(pin)) releaseLinkPin(pin);
        const st = snap.interfaces[name];
        if (st) this.maps.lvs_tx_ports.delete(u32(st.ifindex));
        delete snap.interfaces[name];
      }
      const remaining = Object.keys(snap.interfaces);
      if (remaining.length === 0) {
        this.close();
        if (existsSync(this.paths.pinDir)) {
          for (const f of readdirSync(this.paths.pinDir)) unlinkSync(`${this.paths.pinDir}/${f}`);
          rmdirSync(this.paths.pinDir);
        }
        removeSnapshot(this.paths.snapshot);
        rmSync(`${this.paths.stateDir}/state.msgpack.tmp`, { force: true });
        return { detached: targets, removed: true };
      }
      writeSnapshot(this.paths.snapshot, snap);
      this.snap = snap;
      return { detached: targets, removed: false };
    }
  }

  /**
   * Detach when the state cannot be opened (corrupt, foreign or newer snapshot, a pinned map
   * removed by hand): releases the pinned XDP links (all, or `ifname`'s) and, when none is left,
   * removes what lvs-xdp pinned (only its own names) and the snapshot. Reads nothing but the pin
   * directory, so it works whatever state the snapshot is in.
   */
  static async forceDetach(opts: DirectorOptions = {}, ifname?: string): Promise<{ detached: string[]; removed: boolean }> {
    const paths = statePaths(opts);
    const pins = (): string[] => (existsSync(paths.pinDir) ? readdirSync(paths.pinDir) : []);
    const r = await withLock(paths, () => {
      const links = pinnedLinks(paths.pinDir);
      if (ifname !== undefined && !links.includes(ifname)) {
        throw new NotAttachedError(`lvs-xdp is not attached to ${ifname} (no link pinned at ${paths.pinDir})`, { hint: `pinned links: ${links.join(', ') || 'none'}` });
      }
      const targets = ifname === undefined ? links : [ifname];
      for (const name of targets) {
        releaseLinkPin(`${paths.pinDir}/${LINK_PREFIX}${name}`);
      }
      const own = new Set<string>([...DIRECTOR_MAPS, PROG_PIN]);
      const removed = pinnedLinks(paths.pinDir).length === 0;
      if (removed) {
        for (const f of pins()) if (own.has(f)) unlinkSync(`${paths.pinDir}/${f}`);
        if (existsSync(paths.pinDir) && pins().length === 0) rmdirSync(paths.pinDir);
        rmSync(paths.snapshot, { force: true });
        rmSync(`${paths.stateDir}/state.msgpack.tmp`, { force: true });
      }
      return { detached: targets, removed };
    });
    if (r.removed) removeStateDir(paths);
    return r;
  }

  /** When an apply was interrupted (process killed): its start time, until repaired. */
  get interruptedApply(): string | undefined {
    return this.snap.pending?.startedAt;
  }

  /**
   * Completes an interrupted apply (every step is idempotent, and each service is switched in
   * one step, so the data plane ran the old or the new table of each service, never a mix).
   * Returns whether there was anything to repair.
   */
  async repair(): Promise<boolean> {
    return withLock(this.paths, () => {
      const fresh = readSnapshot(this.paths.snapshot);
      if (!fresh) throw new NotAttachedError('the director was detached meanwhile');
      this.snap = fresh;
      if (!fresh.pending) return false;
      this.recover();
      return true;
    });
  }

  /** What applying `desired` would change, without touching anything. */
  plan(desired: DirectorConfig): ApplyResult {
    const running = this.snap.applied.config;
    const changes = diffConfig(running, desired);
    const moves = tableMovesFor(running, desired);
    const { text, data } = formatDiff(changes, moves);
    return { changes, moves, report: data, text, applied: false };
  }

  /** Applies ipvsadm commands (-A -E -D -C -a -e -d) to the running configuration. */
  async run(commands: readonly IpvsadmCommand[], opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate((running) => applyCommands(running, commands), opts);
  }

  /** Makes `desired` the running configuration (validated and compiled before anything is written). */
  async apply(desired: DirectorConfig, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate(() => desired, opts);
  }

  /** `ipvsadm --set`: changes the given idle timeouts (seconds), keeps the others. */
  async setTimeouts(t: TimeoutSettings, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutate((running) => ({
      ...running, settings: { ...running.settings, timeouts: { ...running.settings?.timeouts, ...t } },
    }), opts);
  }

  private async mutate(change: (running: DirectorConfig) => DirectorConfig, opts: ApplyOptions): Promise<ApplyResult> {
    return withLock(this.paths, () => {
      // Another process may have changed the director since we opened it.
      const fresh = readSnapshot(this.paths.snapshot);
      if (!fresh) throw new NotAttachedError('the director was detached meanwhile');
      this.snap = fresh;
      if (fresh.pending) this.recover();
      const l = this.limits();
      const desired = validateConfig(change(this.snap.applied.config), { maxServices: l.maxServices, maxRealservers: l.maxReals, maxTableSize: l.maxTableSize });
      const result = this.plan(desired);
      if (opts.dryRun) return result;
      // Nothing to do: the maps and the snapshot stay untouched (--refresh rewrites anyway).
      if (result.changes.length === 0 && !opts.refresh) return result;
      this.write(desired, opts);
      return { ...result, applied: true };
    });
  }

  /** What the loaded maps hold; enforced before anything is written. */
  limits(): { maxServices: number; maxReals: number; maxTableSize: number } {
    return { maxServices: this.snap.sizes.maxServices, maxReals: this.snap.sizes.maxReals, maxTableSize: 131071 };
  }

  /** A previous apply was killed half-way: write its target again (every step is idempotent). */
  private recover(): void {
    const p = this.snap.pending!;
    process.stderr.write(`lvs-xdp: completing an apply that was interrupted at ${p.startedAt}\n`);
    this.write(p.config, {}, p);
  }

  /** Compiles `desired` and writes it; `planned` replays an interrupted apply's allocation. */
  private write(desired: DirectorConfig, opts: ApplyOptions, planned?: AppliedState): void {
    const prev = this.snap.applied;
    const attached = Object.keys(this.snap.interfaces);
    const l2 = planned
      ? new Map(Object.entries(planned.l2))
      : resolveAll(desired.services, attached, (s, r) => {
        if (opts.refresh) return undefined;
        const old = prev.config.services.find((x) => serviceId(x) === serviceId(s))?.realservers.find((x) => x.address === r.address);
        if (!old || old.method !== r.method || old.nextHop !== r.nextHop || old.ifname !== r.ifname || old.mac !== r.mac) return undefined;
        return prev.l2[realId(s, r)];
      });
    const resolver = (s: VirtualService, r: Realserver): L2Next | undefined => l2.get(realId(s, r));
    const limits = this.limits();
    // The data plane's view: Tun outer sources filled in from the routing table where not given.
    const sources = tunnelSources(desired);
    const effective: DirectorConfig = { ...desired, settings: { ...desired.settings, tunnel: { ...desired.settings?.tunnel, ...sources } } };
    // What the running tables still name is not handed out again in this change.
    const reserved = {
      services: new Set(Object.values(prev.allocation.services)),
      reals: new Set(Object.values(prev.allocation.reals).map((x) => x.index)),
    };
    let compiled: CompiledDirector;
    if (planned) {
      compiled = compileDirector(effective, resolver, limits, planned.allocation, reserved);
    } else {
      compiled = compileDirector(effective, resolver, limits, prev.allocation, reserved);
      // A realserver whose forwarding data changes (MAC, method, egress) gets a fresh slot and
      // generation: its flows are rescheduled instead of seeing a half-rewritten slot.
      const moved = compiled.reals.filter((r) => prev.reals[r.id] && forwardingBytes(prev.reals[r.id]!) !== forwardingBytes(r.value.toString('hex')));
      if (moved.length) {
        const alloc: Allocation = { ...prev.allocation, reals: { ...prev.allocation.reals } };
        for (const r of moved) delete alloc.reals[r.id];
        compiled = compileDirector(effective, resolver, limits, alloc, reserved);
      }
    }
    const target: AppliedState = {
      config: desired,
      allocation: compiled.allocation,
      l2: Object.fromEntries(l2),
      digests: Object.fromEntries(compiled.services.map((s) => [s.id, digest(s.fingerprint, s.value(0))])),
      reals: Object.fromEntries(compiled.reals.map((r) => [r.id, r.value.toString('hex')])),
    };
    this.snap.pending = { ...target, startedAt: new Date().toISOString() };
    writeSnapshot(this.paths.snapshot, this.snap);
    faultPoint('pending-written');

    const m = this.maps;
    // VIP filter: bits for old and new services before any entry changes (a set bit only means
    // "look it up"), then the filter is switched on; bits of removed services go at the end.
    const filterOf = (cfg: DirectorConfig) => vipFilterWords(cfg.services.map((s) => ({ addr: parseAddress(s.vip)!.bytes, port: s.port })));
    const oldWords = filterOf(prev.config);
    const newWords = filterOf(desired);
    const union = new Map(oldWords);
    for (const [w, v] of newWords) union.set(w, (union.get(w) ?? 0n) | v);
    this.writeFilter(union);
    const cfgFlags = CFG.fields.find((f) => f.name === 'flags')!.offset;
    compiled.cfg[cfgFlags] = compiled.cfg[cfgFlags]! | ABI.LVS_CFG_F_VIP_FILTER;
    m.lvs_cfg.update(u32(0), compiled.cfg);
    for (const st of Object.values(this.snap.interfaces)) m.lvs_tx_ports.update(u32(st.ifindex), u32(st.ifindex));
    for (const r of compiled.reals) {
      if (l2.get(r.id)?.ifindex) m.lvs_tx_ports.update(u32(l2.get(r.id)!.ifindex!), u32(l2.get(r.id)!.ifindex!));
    }

    // 1. Realserver slots. A new slot starts with zeroed statistics.
    const prevIndexes = new Map(Object.entries(prev.allocation.reals).map(([id, a]) => [id, a]));
    for (const r of compiled.reals) {
      const old = prevIndexes.get(r.id);
      const isNew = !old || old.index !== r.index || old.gen !== r.gen;
      if (isNew) this.zeroPerCpu(m.lvs_real_stats, r.index, STATS.size);
      if (isNew || prev.reals[r.id] !== r.value.toString('hex')) {
        m.lvs_reals.update(u32(r.index), r.value);
        faultPoint('real-written');
      }
    }

    // 2. Services: each changed table into its spare slot, then one update of each service
    // entry (the switch). The spare slots are written in one batch: every map-in-map update
    // waits for an RCU grace period (~8 ms here), a batch waits once.
    const switches: { key: Buffer; value: Buffer }[] = [];
    const inners: BpfMap[] = [];
    try {
      const slots: Buffer[] = [];
      const fds: Buffer[] = [];
      for (const s of compiled.services) {
        const d = target.digests[s.id];
        const live = m.lvs_services.lookup(s.key);
        if (live && prev.digests[s.id] === d && !planned) continue;
        const wasNew = !(s.id in prev.allocation.services) || prev.allocation.services[s.id] !== s.svcId;
        if (wasNew && !live) {
          this.zeroPerCpu(m.lvs_svc_stats, s.svcId, STATS.size);
          this.zeroPerCpu(m.lvs_rr_cursor, s.svcId, 4);
        }
        const liveSlot = live ? (decode(SVC, live).table_slot as number) : -1;
        if (planned && live && liveSlot >= 0 && this.tableMatches(liveSlot, s.table) && live.equals(s.value(liveSlot))) continue;
        const spare = liveSlot === s.svcId * 2 ? s.svcId * 2 + 1 : s.svcId * 2;
        const inner = this.fillTable(s.svcId, s.table);
        inners.push(inner);
        slots.push(u32(spare));
        fds.push(u32(inner.fd));
        switches.push({ key: s.key, value: s.value(spare) });
        faultPoint('table-filled');
      }
      if (slots.length) m.lvs_tables.updateMany(slots, fds);
    } finally {
      // The outer map holds its own references to the inner maps.
      for (const i of inners) i.close();
    }
    for (const sw of switches) {
      m.lvs_services.update(sw.key, sw.value);
      faultPoint('table-switched');
    }

    // 3. Removals, now that no table names them.
    const keep = new Set(compiled.services.map((s) => s.id));
    for (const old of prev.config.services) {
      const id = serviceId(old);
      if (keep.has(id)) continue;
      const svcId = prev.allocation.services[id];
      const key = serviceKey(old);
      m.lvs_services.delete(key);
      faultPoint('service-removed');
      if (svcId !== undefined && !Object.values(compiled.allocation.services).includes(svcId)) {
        m.lvs_tables.delete(u32(svcId * 2));
        m.lvs_tables.delete(u32(svcId * 2 + 1));
      }
    }
    const liveIndexes = new Set(compiled.reals.map((r) => r.index));
    for (const [id, a] of Object.entries(prev.allocation.reals)) {
      if (liveIndexes.has(a.index)) continue;
      // Inactive slot: flows still pointing at it are rescheduled (conn_real_gone).
      m.lvs_reals.update(u32(a.index), Buffer.alloc(REAL.size));
      void id;
    }

    this.writeFilter(newWords, union);
    faultPoint('before-commit');
    delete this.snap.pending;
    this.snap.applied = target;
    writeSnapshot(this.paths.snapshot, this.snap);
    faultPoint('committed');
  }

  /** Writes the filter words that differ from `known` (default: what the map holds). */
  private writeFilter(words: Map<number, bigint>, known?: Map<number, bigint>): void {
    const map = this.maps.lvs_vip_filter;
    if (!known) {
      known = new Map();
      const { values } = map.entries();
      values.forEach((v, i) => {
        const x = v.readBigUInt64LE(0);
        if (x) known!.set(i, x);
      });
    }
    for (const w of new Set([...known.keys(), ...words.keys()])) {
      const v = words.get(w) ?? 0n;
      if ((known.get(w) ?? 0n) !== v) map.update(u32(w), vipWordValue(v));
    }
  }


  private zeroPerCpu(map: BpfMap, index: number, size: number): void {
    map.update(u32(index), Buffer.alloc(Math.ceil(size / 8) * 8 * possibleCpus()));
  }

  private tableMatches(slot: number, table: Uint32Array): boolean {
    const idBuf = this.maps.lvs_tables.lookup(u32(slot));
    if (!idBuf) return false;
    const inner = BpfMap.fromId(idBuf.readUInt32LE(0));
    try {
      if (inner.maxEntries !== table.length) return false;
      const { values } = inner.entries();
      return values.every((v, i) => v.readUInt32LE(0) === table[i]);
    } finally {
      inner.close();
    }
  }

  /** A new inner map holding `table` (the caller puts it in lvs_tables, then closes it). */
  private fillTable(svcId: number, table: Uint32Array): BpfMap {
    const inner = BpfMap.create({
      type: BPF_MAP_TYPE_ARRAY, name: `lvs_t${svcId}`, keySize: 4, valueSize: 4, maxEntries: table.length, flags: BPF_F_INNER_MAP,
    });
    try {
      const keys: Buffer[] = new Array(table.length);
      const values: Buffer[] = new Array(table.length);
      for (let i = 0; i < table.length; i++) {
        keys[i] = u32(i);
        values[i] = u32(table[i]!);
      }
      inner.updateMany(keys, values);
      return inner;
    } catch (e) {
      inner.close();
      throw e;
    }
  }

  /**
   * The lookup tables as the kernel holds them: per service, slot -> realserver address (or
   * null for an empty slot). Read back from the live inner maps, not from the snapshot.
   */
  readTables(): Map<string, (string | null)[]> {
    this.fresh();
    const out = new Map<string, (string | null)[]>();
    const byIndex = new Map<number, string>();
    for (const [id, a] of Object.entries(this.snap.applied.allocation.reals)) byIndex.set(a.index, id.slice(id.indexOf('/') + 1));
    for (const s of this.snap.applied.config.services) {
      const live = this.maps.lvs_services.lookup(serviceKey(s));
      if (!live) continue;
      const idBuf = this.maps.lvs_tables.lookup(u32(decode(SVC, live).table_slot as number));
      if (!idBuf) continue;
      const inner = BpfMap.fromId(idBuf.readUInt32LE(0));
      try {
        out.set(serviceId(s), inner.entries().values.map((v) => byIndex.get(v.readUInt32LE(0)) ?? null));
      } finally {
        inner.close();
      }
    }
    return out;
  }

  /** ipvsadm -Z: zero the packet, byte and connection counters of one service (id) or all. */
  zeroStats(service?: string): void {
    const alloc = this.snap.applied.allocation;
    if (service !== undefined && !(service in alloc.services)) throw new ConfigError(`service ${service} does not exist`, { hint: 'list them with -L -n' });
    for (const [id, svcId] of Object.entries(alloc.services)) {
      if (service === undefined || id === service) this.zeroPerCpu(this.maps.lvs_svc_stats, svcId, STATS.size);
    }
    for (const [id, a] of Object.entries(alloc.reals)) {
      if (service === undefined || id.startsWith(`${service}/`)) this.zeroPerCpu(this.maps.lvs_real_stats, a.index, STATS.size);
    }
  }

  /** Interfaces, program, sizes, memory and fill levels. */
  status(): DirectorStatus {
    this.fresh();
    const snap = this.snap;
    const interfaces: InterfaceStatus[] = Object.entries(snap.interfaces).map(([name, st]) => {
      let mode = st.mode;
      let linked = existsSync(`${this.paths.pinDir}/${LINK_PREFIX}${name}`);
      try {
        const q = xdpQuery(st.ifindex);
        if (q.driverProgId === snap.progId) mode = 'native';
        else if (q.skbProgId === snap.progId) mode = 'generic';
        else linked = false;
      } catch {
        linked = false;
      }
      return { name, ifindex: st.ifindex, mode, attachedAt: st.attachedAt, linked };
    });
    // A link pinned by an attach that was killed before it wrote the snapshot.
    for (const name of pinnedLinks(this.paths.pinDir)) {
      if (snap.interfaces[name]) continue;
      try {
        const link = XdpLink.fromPin(`${this.paths.pinDir}/${LINK_PREFIX}${name}`);
        interfaces.push({ name, ifindex: link.ifindex, mode: link.mode, attachedAt: 'unknown (attach interrupted; not in the snapshot)', linked: link.mode !== 'unknown' });
        link.close();
      } catch {
        // unreadable pin: detach removes it
      }
    }
    let program: DirectorStatus['program'];
    try {
      const fd = openPinned(`${this.paths.pinDir}/${PROG_PIN}`);
      try {
        const p = progInfo(fd);
        program = { id: p.id, name: p.name, tag: p.tag, jitedLen: p.jitedLen };
      } finally {
        closeFd(fd);
      }
    } catch {
      program = undefined;
    }
    const maps = DIRECTOR_MAPS.map((n) => ({ name: n, maxEntries: this.maps[n].maxEntries, memlock: memlockOf(this.maps[n].fd) }));
    const st: DirectorStatus = {
      attached: interfaces.length > 0, pinDir: this.paths.pinDir, stateDir: this.paths.stateDir, interfaces,
      sizes: snap.sizes, knobs: snap.knobs, services: snap.applied.config.services.length,
      realservers: snap.applied.config.services.reduce((n, s) => n + s.realservers.length, 0),
      connections: (() => {
        const entries = this.countEntries(this.maps.lvs_conns);
        return { entries, max: this.maps.lvs_conns.maxEntries, evicted: Director.evictions(entries, this.readCounters()) };
      })(),
      memoryBytes: maps.reduce((n, x) => n + x.memlock, 0), maps, version: VERSION,
      createdAt: snap.createdAt, updatedAt: snap.updatedAt,
    };
    if (program) st.program = program;
    if (snap.pending) st.pendingApply = snap.pending.startedAt;
    return st;
  }

  /** The named counters, each summed over all CPUs (names in lower case). */
  private readCounters(): Record<string, bigint> {
    const counters: Record<string, bigint> = {};
    for (const c of COUNTERS) {
      counters[c.name.toLowerCase()] = (this.maps.lvs_counters.lookupPerCpu(u32(c.index)) ?? []).reduce((t, b) => t + b.readBigUInt64LE(0), 0n);
    }
    return counters;
  }

  /**
   * Entries the LRU evicted since load: every new flow inserts a key except those that replace
   * an entry of the same flow (real gone, reused, expired); nothing else deletes entries.
   */
  private static evictions(entries: number, c: Record<string, bigint>): number {
    const inserts = c.conn_new! - c.conn_real_gone! - c.conn_reused! - c.conn_expired!;
    return Math.max(0, Number(inserts) - entries);
  }

  private countEntries(map: BpfMap): number {
    return map.entries().keys.length;
  }

  private sumPerCpu(map: BpfMap, index: number): Numbers {
    const out = { packets: 0n, bytes: 0n, conns: 0n };
    const vals = map.lookupPerCpu(u32(index)) ?? [];
    for (const b of vals) {
      const v = decode(STATS, b);
      out.packets += v.packets as bigint;
      out.bytes += v.bytes as bigint;
      out.conns += v.conns as bigint;
    }
    return out;
  }

  /** Per-CPU counters summed, per service and realserver, with connection-table counts. */
  readStats(): StatsSample {
    this.fresh();
    const at = process.hrtime.bigint();
    const { byReal, entries } = this.connectionCounts(at);
    const alloc = this.snap.applied.allocation;
    const services: ServiceStats[] = [...this.snap.applied.config.services].sort(compareServices).map((s) => {
      const id = serviceId(s);
      const svcId = alloc.services[id];
      const sum = svcId === undefined ? { packets: 0n, bytes: 0n, conns: 0n } : this.sumPerCpu(this.maps.lvs_svc_stats, svcId);
      return {
        id, ...sum,
        realservers: s.realservers.map((r) => {
          const a = alloc.reals[realId(s, r)];
          const n = a ? this.sumPerCpu(this.maps.lvs_real_stats, a.index) : { packets: 0n, bytes: 0n, conns: 0n };
          const c = a ? byReal.get(`${a.index}/${a.gen}`) : undefined;
          return { address: r.address, port: r.port, weight: r.weight, ...n, active: c?.active ?? 0, inactive: c?.inactive ?? 0 };
        }),
      };
    });
    const counters = this.readCounters();
    return { at, services, counters, connections: { entries, max: this.maps.lvs_conns.maxEntries, evicted: Director.evictions(entries, counters) } };
  }

  private timeouts(): number[] {
    const t = { ...DEFAULT_TIMEOUTS, ...this.snap.applied.config.settings?.timeouts };
    return [0, t.synRecv, t.tcp, t.tcpFin, t.close, t.udp];
  }

  /** ActiveConn (TCP ESTABLISHED) / InActConn (other live states, UDP included: IPVS starts every
   *  connection inactive and only TCP's state machine makes it active) per slot "index/gen". */
  private connectionCounts(now: bigint): { byReal: Map<string, { active: number; inactive: number }>; entries: number } {
    const byReal = new Map<string, { active: number; inactive: number }>();
    const { values } = this.maps.lvs_conns.entries();
    const timeouts = this.timeouts();
    for (const v of values) {
      const c = decode(CONN, v);
      const state = c.state as number;
      const age = Number((now - (c.last_seen_ns as bigint)) / 1_000_000_000n);
      if (age > (timeouts[state] ?? 0)) continue;
      const k = `${c.real as number}/${c.gen as number}`;
      const e = byReal.get(k) ?? { active: 0, inactive: 0 };
      if (state === ABI.LVS_CS_ESTABLISHED) e.active++;
      else e.inactive++;
      byReal.set(k, e);
    }
    return { byReal, entries: values.length };
  }

  /** The connection table, as `ipvsadm -L -n -c` shows it (live entries only). */
  connections(): ConnectionInfo[] {
    this.fresh();
    const now = process.hrtime.bigint();
    const timeouts = this.timeouts();
    const bySlot = new Map<string, { svc: VirtualService; rs: Realserver }>();
    for (const s of this.snap.applied.config.services) {
      for (const r of s.realservers) {
        const a = this.snap.applied.allocation.reals[realId(s, r)];
        if (a) bySlot.set(`${a.index}/${a.gen}`, { svc: s, rs: r });
      }
    }
    const { keys, values } = this.maps.lvs_conns.entries();
    const out: ConnectionInfo[] = [];
    keys.forEach((kb, i) => {
      const k = decode(FLOW_KEY, kb);
      const c = decode(CONN, values[i]!);
      const state = c.state as number;
      const age = Number(now - (c.last_seen_ns as bigint)) / 1e9;
      const expire = (timeouts[state] ?? 0) - age;
      if (expire < 0) return;
      const fam = k.family as number;
      const addr = (b: Uint8Array) => formatAddress({ family: fam === 6 ? 6 : 4, bytes: fam === 6 ? b : b.subarray(0, 4) } as never);
      const owner = bySlot.get(`${c.real as number}/${c.gen as number}`);
      out.push({
        protocol: (k.proto as number) === 6 ? 'tcp' : 'udp',
        state: state === ABI.LVS_CS_UDP ? 'UDP' : STATE_NAMES[state] ?? String(state),
        expire,
        client: { address: addr(k.saddr as Uint8Array), port: k.sport as number },
        virtual: { address: addr(k.daddr as Uint8Array), port: k.dport as number },
        realserver: owner ? { address: owner.rs.address, port: (k.dport as number) } : undefined,
        service: owner ? serviceId(owner.svc) : undefined,
      });
    });
    return out;
  }
}

/**
 * --force: removes whatever XDP program the interface carries. A bpf_link attachment (found with
 * bpftool, by ifindex) is detached through the link; a netlink one is switched off with ip.
 */
function detachForeign(ifindex: number, ifname: string, progId: number): void {
  try {
    // Links are global: match the program (ids are unique) and the ifindex the link reports.
    const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { id: number; type: string; prog_id?: number }[];
    for (const l of links.filter((x) => x.type === 'xdp' && x.prog_id === progId)) {
      const link = XdpLink.fromId(l.id);
      try {
        if (link.ifindex === ifindex) link.detach();
      } finally {
        link.close();
      }
    }
  } catch {
    // no bpftool or no links: netlink below
  }
  for (const mode of ['xdpgeneric', 'xdpdrv', 'xdpoffload']) {
    try {
      execFileSync('ip', ['link', 'set', 'dev', ifname, mode, 'off'], { stdio: 'ignore' });
    } catch {
      // not attached in that mode
    }
  }
}

/** Kernel memory charged to a map (fdinfo memlock). */
function memlockOf(fd: number): number {
  try {
    const m = /memlock:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

