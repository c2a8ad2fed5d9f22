/**
 * The data plane's scheduling hash, computed in TypeScript: jhash2 over the same 10 words that
 * lvs_flow_hash() in bpf/lvs_hash.h builds. Used to predict which table slot a flow
 * takes (tests, the reference model, `lvs-xdp` explanations).
 */
import { jhash2 } from '../hash/jhash.js';
import { ABI } from '../abi/generated.js';

export interface Flow {
  saddr: Uint8Array; // 4 or 16 bytes, network order
  daddr: Uint8Array;
  sport: number; // host order port numbers
  dport: number;
  proto: number;
}

/** Raw u16 as the data plane loads it: the two network-order bytes read little-endian. */
function rawPort(port: number): number {
  return ((port & 0xff) << 8) | (port >>> 8);
}

function addrWords(a: Uint8Array, into: Uint32Array, at: number): void {
  const b = Buffer.alloc(16);
  b.set(a);
  for (let i = 0; i < 4; i++) into[at + i] = b.readUInt32LE(i * 4);
}

export function flowHash(f: Flow, fields: number, seed: number): number {
  const k = new Uint32Array(10);
  if (fields & ABI.LVS_HF_SADDR) addrWords(f.saddr, k, 0);
  if (fields & ABI.LVS_HF_DADDR) addrWords(f.daddr, k, 4);
  let ports = 0;
  if (fields & ABI.LVS_HF_SPORT) ports |= rawPort(f.sport);
  if (fields & ABI.LVS_HF_DPORT) ports |= rawPort(f.dport) << 16;
  k[8] = ports >>> 0;
  if (fields & ABI.LVS_HF_PROTO) k[9] = f.proto;
  return jhash2(k, seed);
}

export const HASH_ALL = ABI.LVS_HF_SADDR | ABI.LVS_HF_SPORT | ABI.LVS_HF_DADDR | ABI.LVS_HF_DPORT | ABI.LVS_HF_PROTO;
