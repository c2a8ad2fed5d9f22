/**
 * Step 5 of the packet path ("Forwarding"): the bytes the director sends. DR rewrites MACs, Tun
 * inserts an outer header after L2, and the too-big answer is a new ICMP packet to the client.
 */
import { flowHash, HASH_ALL } from '../../src/dataplane/flowhash.js';
import type { Packet } from './parse.js';
import type { Real, Settings } from './types.js';
import { PROTO } from './types.js';

export const ICMP_QUOTE_MAX = 128;

/** RFC 1071 one's complement checksum over the concatenated parts. */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = -1; // a byte waiting for its partner across part boundaries
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      if (odd < 0) odd = p[i]!;
      else { sum += (odd << 8) | p[i]!; odd = -1; }
    }
  }
  if (odd >= 0) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet addresses toward a realserver: destination = its MAC (or its next hop's); source =
 *  the egress interface's own MAC: for XDP_TX the ingress interface's (`egress`, from its
 *  accepted-MAC entry), never the MAC the frame was sent to; for a redirect the realserver's smac. */
function rewriteMacs(l2: Buffer, r: Real, egress: Uint8Array): void {
  Buffer.from(r.mac).copy(l2, 0);
  Buffer.from(r.ifindex !== 0 ? r.smac : egress).copy(l2, 6);
}

export function buildDr(frame: Buffer, r: Real, egress: Uint8Array): Buffer {
  const out = Buffer.from(frame);
  rewriteMacs(out, r, egress);
  return out;
}

export function tunnelOuterLen(r: Real): number {
  return r.family === 4 ? 20 : 40;
}

/** Tun: L2 (MACs rewritten, ethertype of the outer family, VLAN tags kept), the outer header,
 *  then everything from the inner IP header on, unchanged. */
export function buildTun(frame: Buffer, p: Packet, r: Real, s: Settings, egress: Uint8Array): Buffer {
  const l2 = Buffer.from(frame.subarray(0, p.l3Off));
  rewriteMacs(l2, r, egress);
  const ttl = s.tunTtl || 64;
  const innerProto = p.family === 4 ? PROTO.IPIP : PROTO.IPV6;
  let outer: Buffer;
  if (r.family === 4) {
    l2.writeUInt16BE(0x0800, p.l3Off - 2);
    outer = Buffer.alloc(20);
    outer[0] = 0x45;
    outer[1] = p.tos;
    outer.writeUInt16BE(20 + p.l3Len, 2);
    outer.writeUInt16BE(0x4000, 6); // DF, ID 0
    outer[8] = ttl;
    outer[9] = innerProto;
    Buffer.from(s.tunSrc4).copy(outer, 12);
    Buffer.from(r.addr.subarray(0, 4)).copy(outer, 16);
    outer.writeUInt16BE(internetChecksum(outer), 10);
  } else {
    l2.writeUInt16BE(0x86dd, p.l3Off - 2);
    const label = flowHash({ saddr: p.saddr, daddr: p.daddr, sport: p.sport, dport: p.dport, proto: p.proto }, HASH_ALL, s.seed) & 0xfffff;
    outer = Buffer.alloc(40);
    outer.writeUInt32BE(((6 << 28) | (p.tos << 20) | label) >>> 0, 0);
    outer.writeUInt16BE(p.l3Len, 4);
    outer[6] = innerProto;
    outer[7] = ttl;
    Buffer.from(s.tunSrc6).copy(outer, 8);
    Buffer.from(r.addr).copy(outer, 24);
  }
  return Buffer.concat([l2, outer, frame.subarray(p.l3Off)]);
}

/** Bytes of the client's packet quoted in a too-big answer: the first 128, whole 32-bit words. */
export function quoteLen(p: Packet): number {
  return Math.min(p.l3Len, ICMP_QUOTE_MAX) & ~3;
}

/** ICMP fragmentation-needed / ICMPv6 packet-too-big to the client, from the VIP, back where the
 *  packet came from (MACs swapped, VLAN tags kept). */
export function buildTooBig(frame: Buffer, p: Packet, mtu: number): Buffer {
  const l2 = Buffer.from(frame.subarray(0, p.l3Off));
  frame.copy(l2, 0, 6, 12);
  frame.copy(l2, 6, 0, 6);
  const quote = frame.subarray(p.l3Off, p.l3Off + quoteLen(p));
  const icmp = Buffer.alloc(8);
  if (p.family === 4) {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip.writeUInt16BE(20 + 8 + quote.length, 2);
    ip[8] = 64;
    ip[9] = PROTO.ICMP;
    Buffer.from(p.daddr.subarray(0, 4)).copy(ip, 12);
    Buffer.from(p.saddr.subarray(0, 4)).copy(ip, 16);
    ip.writeUInt16BE(internetChecksum(ip), 10);
    icmp[0] = 3;
    icmp[1] = 4;
    icmp.writeUInt16BE(mtu, 6);
    icmp.writeUInt16BE(internetChecksum(icmp, quote), 2);
    return Buffer.concat([l2, ip, icmp, quote]);
  }
  const ip = Buffer.alloc(40);
  ip.writeUInt32BE((6 << 28) >>> 0, 0);
  ip.writeUInt16BE(8 + quote.length, 4);
  ip[6] = PROTO.ICMPV6;
  ip[7] = 64;
  Buffer.from(p.daddr).copy(ip, 8);
  Buffer.from(p.saddr).copy(ip, 24);
  icmp[0] = 2;
  icmp.writeUInt32BE(mtu >>> 0, 4);
  const pseudo = Buffer.alloc(40);
  Buffer.from(p.daddr).copy(pseudo, 0);
  Buffer.from(p.saddr).copy(pseudo, 16);
  pseudo.writeUInt32BE(8 + quote.length, 32);
  pseudo.writeUInt32BE(PROTO.ICMPV6, 36);
  icmp.writeUInt16BE(internetChecksum(pseudo, icmp, quote), 2);
  return Buffer.concat([l2, ip, icmp, quote]);
}
