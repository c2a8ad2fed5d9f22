/**
 * Client frames for `lvs-xdp bench`: Ethernet / IPv4 or IPv6 / TCP with correct checksums, as a
 * client's router would deliver them to the director. Frames are at least 96 bytes (the repeat
 * wrapper restores that many before every run: bench/bpf/wrap.bpf.c).
 */
import { parseAddress } from '../model/address.js';

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

/** Where the new-flow wrapper varies a frame: the TCP source port and the source address's last two bytes. */
export function flowOffsets(v6: boolean): { sportOff: number; saddrOff: number } {
  return v6 ? { sportOff: 14 + 40, saddrOff: 14 + 8 + 14 } : { sportOff: 14 + 20, saddrOff: 14 + 12 + 2 };
}

function bytes(a: string): Uint8Array {
  const p = parseAddress(a);
  if (!p) throw new TypeError(`not an IP address: ${a}`);
  return p.family === 4 ? p.bytes.subarray(p.bytes.length - 4) : p.bytes;
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function macBytes(m: string): Buffer {
  return Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
}

/** One TCP segment from `src`:sport to `dst`:dport with `flags`, addressed to `dstMac`. */
export function tcpFrame(o: { src: string; dst: string; sport: number; dport: number; flags: number; dstMac: string; srcMac: string; payload?: number }): Buffer {
  const s = Buffer.from(bytes(o.src)), d = Buffer.from(bytes(o.dst));
  const v6 = s.length === 16;
  if (v6 !== (d.length === 16)) throw new TypeError('client and VIP of different families');
  const tcp = Buffer.alloc(20 + (o.payload ?? 64));
  tcp.writeUInt16BE(o.sport, 0);
  tcp.writeUInt16BE(o.dport, 2);
  tcp.writeUInt32BE(1000, 4);
  tcp.writeUInt32BE(o.flags & TCP_ACK ? 1 : 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = o.flags;
  tcp.writeUInt16BE(65535, 14);
  const pseudo = Buffer.alloc(v6 ? 40 : 12);
  if (v6) {
    s.copy(pseudo, 0); d.copy(pseudo, 16);
    pseudo.writeUInt32BE(tcp.length, 32); pseudo[39] = 6;
  } else {
    s.copy(pseudo, 0); d.copy(pseudo, 4);
    pseudo[9] = 6; pseudo.writeUInt16BE(tcp.length, 10);
  }
  tcp.writeUInt16BE(checksum(Buffer.concat([pseudo, tcp])), 16);
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6; ip[7] = 64;
    s.copy(ip, 8); d.copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip.writeUInt16BE(0x4000, 6);
    ip[8] = 64; ip[9] = 6;
    s.copy(ip, 12); d.copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
  }
  const eth = Buffer.alloc(14);
  macBytes(o.dstMac).copy(eth, 0);
  macBytes(o.srcMac).copy(eth, 6);
  eth.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  return Buffer.concat([eth, ip, tcp]);
}
