/**
 * Map keys as the hex of their ABI bytes (src/abi/layout.ts describes the C structs and is
 * checked against the object's BTF), so a model key and a kernel key compare as strings.
 */
import { encode, SVC_KEY, FLOW_KEY, PERSIST_KEY, FRAG_KEY } from '../../src/abi/layout.js';
import type { ServiceKey } from './types.js';

export function serviceKeyHex(k: ServiceKey): string {
  return encode(SVC_KEY, { addr: k.addr, port: k.port, proto: k.proto, family: k.family }).toString('hex');
}

/** dir: LVS_DIR_REPLY for an LVS-NAT reply entry (keyed by the reply's own tuple); absent = 0. */
export interface FlowTuple { saddr: Uint8Array; daddr: Uint8Array; sport: number; dport: number; proto: number; family: number; dir?: number }

export function flowKeyHex(f: FlowTuple): string {
  return encode(FLOW_KEY, {
    saddr: f.saddr, daddr: f.daddr, sport: f.sport, dport: f.dport, proto: f.proto, family: f.family, dir: f.dir ?? 0,
  }).toString('hex');
}

export function persistKeyHex(client: Uint8Array, mask: Uint8Array, svcId: number, family: number): string {
  const caddr = new Uint8Array(16);
  for (let i = 0; i < 16; i++) caddr[i] = (client[i] ?? 0) & (mask[i] ?? 0);
  return encode(PERSIST_KEY, { caddr, svc_id: svcId, family }).toString('hex');
}

export function fragKeyHex(saddr: Uint8Array, daddr: Uint8Array, id: number, proto: number, family: number): string {
  return encode(FRAG_KEY, { saddr, daddr, id, proto, family }).toString('hex');
}
