/**
 * Frame builder and checker for packet tests: Ethernet, VLAN tags, IPv4 (with options), IPv6
 * (with extension headers), TCP, UDP, ICMP. Checksums are computed here independently of the
 * data plane, so tests can verify the bytes the program writes.
 */
// ipaddr.js, not src/model/address.ts: the bytes are built independently of the code under test
// (a dev dependency for that reason). It reads "::a.b.c.d" as ::ffff:a.b.c.d: write ::/96 in hex.
import ipaddr from 'ipaddr.js';

export function mac(s: string): Buffer {
  return Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
}

export function addrBytes(a: string): Buffer {
  return Buffer.from(ipaddr.parse(a).toByteArray());
}

export function familyOf(a: string): 4 | 6 {
  return ipaddr.parse(a).kind() === 'ipv4' ? 4 : 6;
}

/** Internet checksum (RFC 1071) over the concatenated buffers. */
export function inetChecksum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface L4Spec {
  proto: 'tcp' | 'udp';
  sport: number;
  dport: number;
  flags?: number; // TCP flags byte
  payload?: Buffer;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

function l4Header(spec: L4Spec, src: Buffer, dst: Buffer): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const v6 = src.length === 16;
  let h: Buffer;
  if (spec.proto === 'tcp') {
    h = Buffer.alloc(20);
    h.writeUInt16BE(spec.sport, 0);
    h.writeUInt16BE(spec.dport, 2);
    h.writeUInt32BE(1000, 4);
    h.writeUInt32BE(spec.flags && spec.flags & TCP.ACK ? 1 : 0, 8);
    h[12] = 5 << 4;
    h[13] = spec.flags ?? TCP.SYN;
    h.writeUInt16BE(65535, 14);
  } else {
    h = Buffer.alloc(8);
    h.writeUInt16BE(spec.sport, 0);
    h.writeUInt16BE(spec.dport, 2);
    h.writeUInt16BE(8 + payload.length, 4);
  }
  const seg = Buffer.concat([h, payload]);
  const proto = spec.proto === 'tcp' ? 6 : 17;
  const pseudo = pseudoHeader(src, dst, proto, seg.length, v6);
  const c = inetChecksum(pseudo, seg);
  seg.writeUInt16BE(spec.proto === 'udp' && c === 0 ? 0xffff : c, spec.proto === 'tcp' ? 16 : 6);
  return seg;
}

export function pseudoHeader(src: Buffer, dst: Buffer, proto: number, len: number, v6: boolean): Buffer {
  if (v6) {
    const p = Buffer.alloc(40);
    src.copy(p, 0); dst.copy(p, 16);
    p.writeUInt32BE(len, 32);
    p.writeUInt32BE(proto, 36);
    return p;
  }
  const p = Buffer.alloc(12);
  src.copy(p, 0); dst.copy(p, 4);
  p[9] = proto;
  p.writeUInt16BE(len, 10);
  return p;
}

export interface Ipv4Opts { tos?: number; ttl?: number; id?: number; df?: boolean; mf?: boolean; fragOffset?: number; options?: Buffer; proto?: number }

export function ipv4(src: string, dst: string, payload: Buffer, o: Ipv4Opts = {}): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h[0] = 0x40 | ((20 + opts.length) / 4);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(h.length + payload.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  h.writeUInt16BE(((o.df ?? true) ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) / 8), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto ?? 6;
  addrBytes(src).copy(h, 12);
  addrBytes(dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

export interface Ipv6Opts { tc?: number; hop?: number; ext?: { type: number; body: Buffer }[]; proto?: number }

/** ext: extension headers in order; each body excludes the 2-byte next/len prefix, except
 *  fragment headers (type 44) whose body is the 6 bytes after next-header/reserved. */
export function ipv6(src: string, dst: string, payload: Buffer, o: Ipv6Opts = {}): Buffer {
  const exts = o.ext ?? [];
  const finalProto = o.proto ?? 6;
  const chain: Buffer[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1]!.type : finalProto;
    if (e.type === 44) {
      const f = Buffer.alloc(8);
      f[0] = next;
      e.body.copy(f, 2, 0, 6);
      chain.push(f);
    } else {
      const len = 2 + e.body.length;
      if (len % 8) throw new Error('extension header length must be a multiple of 8');
      const b = Buffer.alloc(len);
      b[0] = next;
      b[1] = len / 8 - 1;
      e.body.copy(b, 2);
      chain.push(b);
    }
  });
  const rest = Buffer.concat([...chain, payload]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE((6 << 28) | ((o.tc ?? 0) << 20), 0);
  h.writeUInt16BE(rest.length, 4);
  h[6] = exts.length ? exts[0]!.type : finalProto;
  h[7] = o.hop ?? 64;
  addrBytes(src).copy(h, 8);
  addrBytes(dst).copy(h, 24);
  return Buffer.concat([h, rest]);
}

export function l4(spec: L4Spec, src: string, dst: string): Buffer {
  return l4Header(spec, addrBytes(src), addrBytes(dst));
}

export interface FrameOpts { dst?: string; src?: string; vlans?: { tpid: number; vid: number }[] }

export const DIRECTOR_MAC = '02:00:00:00:00:01';
export const CLIENT_ROUTER_MAC = '02:00:00:00:00:fe';

export function ether(ethertype: number, payload: Buffer, o: FrameOpts = {}): Buffer {
  const vlans = o.vlans ?? [];
  const h = Buffer.alloc(14 + 4 * vlans.length);
  mac(o.dst ?? DIRECTOR_MAC).copy(h, 0);
  mac(o.src ?? CLIENT_ROUTER_MAC).copy(h, 6);
  let off = 12;
  for (const v of vlans) {
    h.writeUInt16BE(v.tpid, off);
    h.writeUInt16BE(v.vid, off + 2);
    off += 4;
  }
  h.writeUInt16BE(ethertype, off);
  return Buffer.concat([h, payload]);
}

/** A whole client packet: Ethernet (+VLANs) / IPv4 or IPv6 / TCP or UDP. */
export function clientPacket(src: string, dst: string, spec: L4Spec, o: FrameOpts & Ipv4Opts & Ipv6Opts = {}): Buffer {
  const seg = l4(spec, src, dst);
  const proto = spec.proto === 'tcp' ? 6 : 17;
  if (familyOf(src) === 4) return ether(0x0800, ipv4(src, dst, seg, { ...o, proto }), o);
  return ether(0x86dd, ipv6(src, dst, seg, { ...o, proto }), o);
}

export function l2Len(frame: Buffer): number {
  let off = 12;
  while (frame.readUInt16BE(off) === 0x8100 || frame.readUInt16BE(off) === 0x88a8) off += 4;
  return off + 2;
}

/** Checks an IPv4 header's checksum in place; returns true when valid. */
export function ipv4HeaderOk(ip: Buffer): boolean {
  const ihl = (ip[0]! & 0xf) * 4;
  return inetChecksum(ip.subarray(0, ihl)) === 0;
}
