/** The director's public types: options, results and what the readers return. */
import type { SyncDaemonStatus } from '../sync/state.js';
import type { XdpMode } from '../native/index.js';
import type { DirectorSizes, Knobs } from '../dataplane/loader.js';
import type { Change, DiffReport } from '../diff/index.js';
import type { Step } from './plan.js';
import type { AcceptedMac } from '../dataplane/l2addrs.js';

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
  /** Share the interface with other XDP programs (tail-call chain; src/director/chain.ts). */
  multiprog?: boolean;
}

export interface ApplyOptions {
  /** Compute and report only (with `steps`, the plan is built: MACs are resolved). */
  dryRun?: boolean;
  /** Resolve every realserver's MAC again instead of reusing what the snapshot has. */
  refresh?: boolean;
  /** Build the plan's steps (for printing) also in a dry run. */
  steps?: boolean;
}

export interface ApplyResult {
  changes: Change[];
  /** serviceId -> share of table slots (so of new flows) that move to another realserver. */
  moves: Map<string, number>;
  report: DiffReport;
  text: string;
  applied: boolean;
  /** The plan's steps, when built (an apply that wrote something, or a dry run with `steps`). */
  steps?: Step[];
  /** After a write: realservers installed unresolved ("serviceId/rip" -> why); they take no new flows. */
  unresolved?: Record<string, string>;
  /** After a write: realservers that were unresolved and now have a next hop. */
  resolved?: string[];
}

/** A realserver in a listing of unresolved or drained ones. */
export interface RealserverNote { service: string; address: string; since: string; problem?: string }

export interface InterfaceStatus {
  name: string; ifindex: number; mode: string; attachedAt: string; linked: boolean;
  /** Why an `auto` attach runs in generic mode (the driver refused native XDP). */
  genericBecause?: string;
  /** 'chain': shares the interface by tail calls. */
  sharing?: 'chain';
}
export interface MapUsage { name: string; maxEntries: number; memlock: number }
/** The lookup tables (the inner arrays of lvs_tables): how many, their slots, their kernel memory. */
export interface TablesMemory { count: number; slots: number; memlock: number }
/** Kernel memory of a director's maps: each pinned map, the lookup tables, and their sum. */
export interface MapMemory { maps: MapUsage[]; tables: TablesMemory; total: number }
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
  /** Kernel memory of the director's maps, lookup tables included (fdinfo memlock). */
  memoryBytes?: number;
  maps?: MapUsage[];
  /** The lookup tables, counted in memoryBytes (lvs_tables in `maps` is only the outer array). */
  tables?: TablesMemory;
  version: string;
  createdAt?: string;
  updatedAt?: string;
  pendingApply?: string;
  /** Realservers installed without a next hop (they do not answer ARP/ND): no new flows. */
  unresolved?: RealserverNote[];
  /** Manual drains in force (`lvs-xdp drain`, `-e -w 0`): a service's drain has no address. */
  drains?: { service: string; address?: string; since: string }[];
  /** `lvs-xdp drain --director`: lvs-xdp run withdraws every VIP while this is set. */
  directorDrain?: { since: string };
  /** Connection sync daemons of the running `lvs-xdp run` (its sync-status.json), when one runs. */
  sync?: SyncDaemonStatus[];
  /** Accepted destination MACs (lvs_l2_addrs), with the attached interface's name. */
  accepted?: (AcceptedMac & { interface?: string })[];
  /** Digest of the live lookup tables (`config --digest`): equal on directors that agree on every flow. */
  tableDigest?: string;
}

/** IPVS's statistics: packets / bytes in (InPkts, InBytes), scheduled connections, and the
 *  LVS-NAT replies the director translated (OutPkts, OutBytes; always 0 for DR and Tun). */
export interface Numbers { packets: bigint; bytes: bigint; conns: bigint; outPackets?: bigint; outBytes?: bigint }
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
