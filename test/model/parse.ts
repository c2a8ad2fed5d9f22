/**
 * Step 1 of the packet path ("Parse"): what the director reads from a frame, or the pass_* reason
 * it hands the frame to the kernel untouched.
 */
import type { CounterName } from './types.js';

export const ETH_P = { IPV4: 0x0800, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8 } as const;
export const MAX_VLAN_TAGS = 2;
/** Extension headers the IPv6 parser skips before it must reach the upper-layer header. */
export const MAX_IPV6_EXT_HEADERS = 6;
const IPV6_SKIPPED = new Set([0 /* hop-by-hop */, 43 /* routing */, 60 /* destination options */]);
const IPV6_FRAGMENT = 44;

export type FragKind = 'whole' | 'first' | 'later';

export interface Packet {
  l3Off: number; // Ethernet + VLAN tags
  l4Off: number;
  l3Len: number; // what the IP header claims (header + payload)
  family: 4 | 6;
  proto: number; // after IPv6 extension headers; for a later IPv6 fragment, the fragment header's next header
  frag: FragKind;
  fragId: number;
  tos: number; // IPv4 TOS / IPv6 traffic class
  df: boolean; // IPv4 DF; always set for IPv6
  saddr: Uint8Array; // 16 bytes
  daddr: Uint8Array;
  sport: number; // TCP/UDP only (else 0)
  dport: number;
  tcpFlags: number;
  icmpType: number;
}

export type ParseResult = { ok: true; pkt: Packet } | { ok: false; reason: CounterName };

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

function addr16(b: Uint8Array, o: number, n: number): Uint8Array {
  const a = new Uint8Array(16);
  a.set(b.subarray(o, o + n));
  return a;
}

const fail = (reason: CounterName): ParseResult => ({ ok: false, reason });

export function parseFrame(frame: Uint8Array, ipv6Enabled: boolean): ParseResult {
  const end = frame.length;
  if (end < 14) return fail('PASS_MALFORMED_L2');

  // L2: Ethernet, then at most two VLAN tags.
  let ethertype = be16(frame, 12);
  let l3Off = 14;
  let tags = 0;
  while (ethertype === ETH_P.VLAN || ethertype === ETH_P.QINQ) {
    if (tags === MAX_VLAN_TAGS || l3Off + 4 > end) return fail('PASS_MALFORMED_L2');
    ethertype = be16(frame, l3Off + 2);
    l3Off += 4;
    tags++;
  }

  let pkt: Packet;
  if (ethertype === ETH_P.IPV4) {
    const r = parseIpv4(frame, l3Off);
    if (!r.ok) return r;
    pkt = r.pkt;
  } else if (ethertype === ETH_P.IPV6) {
    if (!ipv6Enabled) return fail('PASS_FAMILY_DISABLED');
    const r = parseIpv6(frame, l3Off);
    if (!r.ok) return r;
    pkt = r.pkt;
  } else {
    return fail('PASS_NOT_IP');
  }
  if (pkt.frag === 'later') return { ok: true, pkt }; // no L4 header in it

  // L4: TCP/UDP ports (TCP data offset checked against the IP length), or the 8-byte ICMP header.
  const room = end - pkt.l4Off;
  const at = pkt.l4Off;
  if (pkt.proto === 6) {
    if (room < 20) return fail('PASS_MALFORMED_L4');
    const dataOffset = frame[at + 12]! >> 4;
    if (dataOffset < 5 || dataOffset * 4 > pkt.l3Len - (pkt.l4Off - pkt.l3Off)) return fail('PASS_MALFORMED_L4');
    pkt.sport = be16(frame, at);
    pkt.dport = be16(frame, at + 2);
    pkt.tcpFlags = frame[at + 13]!;
  } else if (pkt.proto === 17) {
    if (room < 8) return fail('PASS_MALFORMED_L4');
    pkt.sport = be16(frame, at);
    pkt.dport = be16(frame, at + 2);
  } else if (pkt.proto === 1 || pkt.proto === 58) {
    if (room < 8) return fail('PASS_MALFORMED_L4');
    pkt.icmpType = frame[at]!;
  }
  return { ok: true, pkt };
}

function basePacket(l3Off: number, family: 4 | 6): Packet {
  return {
    l3Off, l4Off: 0, l3Len: 0, family, proto: 0, frag: 'whole', fragId: 0, tos: 0, df: true,
    saddr: new Uint8Array(16), daddr: new Uint8Array(16), sport: 0, dport: 0, tcpFlags: 0, icmpType: 0,
  };
}

function parseIpv4(f: Uint8Array, l3Off: number): ParseResult {
  if (l3Off + 20 > f.length) return fail('PASS_MALFORMED_L3');
  const version = f[l3Off]! >> 4;
  const headerLen = (f[l3Off]! & 0xf) * 4;
  const totalLen = be16(f, l3Off + 2);
  if (version !== 4 || headerLen < 20) return fail('PASS_MALFORMED_L3');
  if (totalLen < headerLen || totalLen > f.length - l3Off) return fail('PASS_MALFORMED_L3');
  const p = basePacket(l3Off, 4);
  const fragField = be16(f, l3Off + 6);
  p.l3Len = totalLen;
  p.l4Off = l3Off + headerLen;
  p.tos = f[l3Off + 1]!;
  p.df = (fragField & 0x4000) !== 0;
  p.frag = (fragField & 0x1fff) !== 0 ? 'later' : (fragField & 0x2000) !== 0 ? 'first' : 'whole';
  p.fragId = be16(f, l3Off + 4);
  p.proto = f[l3Off + 9]!;
  p.saddr = addr16(f, l3Off + 12, 4);
  p.daddr = addr16(f, l3Off + 16, 4);
  return { ok: true, pkt: p };
}

function parseIpv6(f: Uint8Array, l3Off: number): ParseResult {
  if (l3Off + 40 > f.length) return fail('PASS_MALFORMED_L3');
  const payloadLen = be16(f, l3Off + 4);
  if (f[l3Off]! >> 4 !== 6) return fail('PASS_MALFORMED_L3');
  if (payloadLen === 0 /* jumbogram */ || 40 + payloadLen > f.length - l3Off) return fail('PASS_MALFORMED_L3');
  const p = basePacket(l3Off, 6);
  p.l3Len = 40 + payloadLen;
  p.tos = (be32(f, l3Off) >>> 20) & 0xff;
  p.df = true;
  p.saddr = addr16(f, l3Off + 8, 16);
  p.daddr = addr16(f, l3Off + 24, 16);

  let next = f[l3Off + 6]!;
  let at = l3Off + 40;
  for (let seen = 0; ; seen++) {
    const skipped = IPV6_SKIPPED.has(next);
    if (!skipped && next !== IPV6_FRAGMENT) {
      // The upper-layer header: it must start inside the IP packet.
      if (at > l3Off + p.l3Len) return fail('PASS_MALFORMED_L3');
      p.proto = next;
      p.l4Off = at;
      return { ok: true, pkt: p };
    }
    if (seen === MAX_IPV6_EXT_HEADERS) return fail('PASS_EXT_HDR_LIMIT');
    if (skipped) {
      if (at + 2 > f.length) return fail('PASS_MALFORMED_L3');
      next = f[at]!;
      at += (f[at + 1]! + 1) * 8;
    } else {
      if (at + 8 > f.length) return fail('PASS_MALFORMED_L3');
      const offsetAndM = be16(f, at + 2);
      next = f[at]!;
      p.fragId = be32(f, at + 4);
      at += 8;
      if ((offsetAndM & 0xfff8) !== 0) p.frag = 'later';
      else if ((offsetAndM & 1) !== 0) p.frag = 'first';
      // offset 0 without M: an atomic fragment, a whole packet
      if (p.frag === 'later') {
        // What follows is fragment data; its "protocol" is the fragment header's next header.
        p.proto = next;
        p.l4Off = at;
        return { ok: true, pkt: p };
      }
    }
  }
}
