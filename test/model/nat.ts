/**
 * LVS-NAT bytes (README "LVS-NAT"): the client side rewritten to RIP:port, the realserver side
 * back to VIP:vport with the TTL / hop limit decremented and the next hop's MACs, ICMP errors
 * about NAT flows translated in their outer and quoted headers. Checksums follow RFC 1624
 * (eqn. 3: HC' = ~(~HC + ~m + m')) on 16-bit words read in network order; IPv4 UDP without a
 * checksum (0) keeps none, a UDP checksum that comes out 0 is written 0xffff; the quoted TCP / UDP
 * checksum of an ICMP error is left as quoted. Returns null where a header to rewrite is not in
 * the frame (DROP_NAT_FAILED).
 */
import type { Packet } from './parse.js';
import { PROTO, type FibEntry, type Real } from './types.js';

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field after a change whose one's complement difference is delta. */
export function csumApply(check: number, delta: number): number {
  return ~fold((~check & 0xffff) + delta) & 0xffff;
}

/** Writes `bytes` at `off` and returns the difference sum (~old + new per 16-bit word). */
function store(out: Buffer, off: number, bytes: Uint8Array): number {
  let d = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const old = out.readUInt16BE(off + i);
    const nw = (bytes[i]! << 8) | bytes[i + 1]!;
    d += (~old & 0xffff) + nw;
    out.writeUInt16BE(nw, off + i);
  }
  return d;
}

function setPort(out: Buffer, off: number, port: number): number {
  const old = out.readUInt16BE(off);
  out.writeUInt16BE(port, off);
  return (~old & 0xffff) + port;
}

function l4Csum(out: Buffer, at: number, proto: number, delta: number, v4: boolean): void {
  const c = out.readUInt16BE(at);
  if (proto === PROTO.UDP && v4 && c === 0) return;
  let n = csumApply(c, delta);
  if (proto === PROTO.UDP && n === 0) n = 0xffff;
  out.writeUInt16BE(n, at);
}

/** One end of the packet (source or destination) to addr[:port]; IPv4 header and TCP / UDP
 *  checksums updated; a non-first fragment has only its addresses. */
function rewrite(out: Buffer, p: Packet, addr: Uint8Array, port: number, src: boolean): boolean {
  const v4 = p.family === 4;
  const l3 = p.l3Off;
  if (l3 + (v4 ? 20 : 40) > out.length) return false;
  let delta = store(out, l3 + (v4 ? (src ? 12 : 16) : (src ? 8 : 24)), addr.subarray(0, v4 ? 4 : 16));
  if (v4) out.writeUInt16BE(csumApply(out.readUInt16BE(l3 + 10), delta), l3 + 10);
  if (p.frag === 'later') return true;
  const l4 = p.l4Off;
  if (l4 + 4 > out.length) return false;
  if (port) delta += setPort(out, l4 + (src ? 0 : 2), port);
  const at = p.proto === PROTO.TCP ? l4 + 16 : p.proto === PROTO.UDP ? l4 + 6 : -1;
  if (at < 0) return true;
  if (at + 2 > out.length) return false;
  l4Csum(out, at, p.proto, delta, v4);
  return true;
}

/** An ICMP error about a NAT flow. inward (client side, about a reply): outer destination and
 *  quoted source -> addr, quoted source port -> port. Outward (realserver side, about the
 *  client's packet): outer source and quoted destination -> addr, quoted destination port. */
function icmp(out: Buffer, p: Packet, addr: Uint8Array, port: number, inward: boolean): boolean {
  const l3 = p.l3Off;
  const l4 = p.l4Off;
  const inner = l4 + 8;
  let delta: number;
  let ports: number;
  if (inner > out.length) return false;
  if (p.family === 4) {
    if (l3 + 20 > out.length || inner + 20 > out.length) return false;
    const a = addr.subarray(0, 4);
    const d = store(out, l3 + (inward ? 16 : 12), a);
    out.writeUInt16BE(csumApply(out.readUInt16BE(l3 + 10), d), l3 + 10);
    delta = store(out, inner + (inward ? 12 : 16), a);
    const oldck = out.readUInt16BE(inner + 10);
    const newck = csumApply(oldck, delta);
    out.writeUInt16BE(newck, inner + 10);
    delta += (~oldck & 0xffff) + newck;
    ports = inner + (((out[inner]! & 0xf) * 4) & 0x3c);
  } else {
    if (l3 + 40 > out.length || inner + 40 > out.length) return false;
    delta = store(out, l3 + (inward ? 24 : 8), addr); // in ICMPv6's pseudo-header
    delta += store(out, inner + (inward ? 8 : 24), addr);
    ports = inner + 40;
  }
  if (ports + 4 > out.length) return false;
  if (port) delta += setPort(out, ports + (inward ? 0 : 2), port);
  out.writeUInt16BE(csumApply(out.readUInt16BE(l4 + 2), delta), l4 + 2);
  return true;
}

/** Client side to realserver r: RIP:port, the realserver's MAC (source as for DR). */
export function buildNatForward(frame: Buffer, p: Packet, r: Real, egress: Uint8Array, isIcmpError: boolean): Buffer | null {
  const out = Buffer.from(frame);
  const ok = isIcmpError ? icmp(out, p, r.addr, r.port ?? 0, true) : rewrite(out, p, r.addr, r.port ?? 0, false);
  if (!ok) return null;
  Buffer.from(r.mac).copy(out, 0);
  Buffer.from(r.ifindex !== 0 ? r.smac : egress).copy(out, 6);
  return out;
}

/** The TTL / hop limit of the packet (the reply is forwarded only when it is above 1). */
export function hopLimit(frame: Buffer, p: Packet): number {
  return frame[p.l3Off + (p.family === 4 ? 8 : 7)]!;
}

/** Realserver side back to VIP:vport, TTL / hop limit - 1, the FIB's next hop. */
export function buildNatReply(frame: Buffer, p: Packet, r: Real, fib: FibEntry, isIcmpError: boolean): Buffer | null {
  const out = Buffer.from(frame);
  const vip = r.vip ?? new Uint8Array(16);
  const ok = isIcmpError ? icmp(out, p, vip, r.vport ?? 0, false) : rewrite(out, p, vip, r.vport ?? 0, true);
  if (!ok) return null;
  const l3 = p.l3Off;
  if (p.family === 4) {
    const old = out.readUInt16BE(l3 + 8);
    out[l3 + 8] = out[l3 + 8]! - 1;
    const d = (~old & 0xffff) + out.readUInt16BE(l3 + 8);
    out.writeUInt16BE(csumApply(out.readUInt16BE(l3 + 10), d), l3 + 10);
  } else {
    out[l3 + 7] = out[l3 + 7]! - 1;
  }
  Buffer.from(fib.dmac).copy(out, 0);
  Buffer.from(fib.smac).copy(out, 6);
  return out;
}
