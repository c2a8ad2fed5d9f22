/** Typed ipvsadm rule commands, as parsed from -A/-E/-D/-C/-a/-e/-d lines. */
import type { ForwardingMethod, Persistence, Protocol, SchedFlag, Scheduler } from '../model/types.js';

/** -t / -u addr:port, or -f MARK [-6] (fwmark set; protocol tcp, vip 0.0.0.0 or ::, port 0) */
export interface ServiceRef {
  fwmark?: number;
  protocol: Protocol;
  vip: string;
  port: number;
}

/** What -A and -E set (IPVS replaces all of it on -E; realservers are kept). */
export interface ServiceSpec extends ServiceRef {
  scheduler: Scheduler;
  flags: SchedFlag[];
  persistence?: Persistence;
  ops: boolean;
  /** --table-size (lvs-xdp extension); on -E, absent keeps the current size. */
  tableSize?: number;
}

/** What -a and -e set. */
export interface RealserverSpec {
  address: string;
  port: number;
  weight: number;
  method: ForwardingMethod;
  /** --mac (lvs-xdp extension); on -e, absent keeps the current MAC. */
  mac?: string;
  /** -x / -y; absent: 0 (no threshold), on -e too (as ipvsadm). */
  upperThreshold?: number;
  lowerThreshold?: number;
}

interface Located {
  /** e.g. `rules.txt:7`, for errors found when the command is applied. */
  location?: string;
}

export type IpvsadmCommand =
  | ({ op: 'add-service'; service: ServiceSpec } & Located)
  | ({ op: 'edit-service'; service: ServiceSpec } & Located)
  | ({ op: 'delete-service'; service: ServiceRef } & Located)
  | ({ op: 'clear' } & Located)
  | ({ op: 'add-server'; service: ServiceRef; realserver: RealserverSpec } & Located)
  | ({ op: 'edit-server'; service: ServiceRef; realserver: RealserverSpec } & Located)
  | ({ op: 'delete-server'; service: ServiceRef; address: string } & Located);
