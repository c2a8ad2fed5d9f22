/**
 * Idle timeouts per connection state, in seconds: a connection entry unused for longer than its
 * state's timeout is scheduled anew. The defaults are IPVS's (ip_vs_proto_tcp.c / _udp.c), so a
 * director that replaces an IPVS one expires connections as it did. Of these, ipvsadm --set (and
 * the config file's `timeouts`) sets tcp, tcp-fin and udp; SYN_RECV and CLOSE keep their defaults.
 */
import type { TimeoutSettings } from './types.js';

/** Every connection state's timeout, named as the model names the settable ones. */
export interface StateTimeouts extends Required<TimeoutSettings> {
  /** SYN seen, no ACK yet. */
  synRecv: number;
  /** RST seen. */
  close: number;
}

export const DEFAULT_TIMEOUTS: Readonly<StateTimeouts> = Object.freeze({ synRecv: 60, tcp: 900, tcpFin: 120, close: 10, udp: 300 });

/** The timeouts in force under `settings`: each one set there, else its default. */
export function effectiveTimeouts(settings?: TimeoutSettings): StateTimeouts {
  const t = { ...DEFAULT_TIMEOUTS };
  for (const k of ['tcp', 'tcpFin', 'udp'] as const) {
    const v = settings?.[k];
    if (v !== undefined) t[k] = v;
  }
  return t;
}
