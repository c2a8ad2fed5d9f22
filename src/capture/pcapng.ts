/**
 * pcapng (the format tcpdump, Wireshark and tshark read): one section, an interface description
 * per interface seen, and enhanced packet blocks carrying each frame with an opt_comment -- the
 * director's decision, shown by Wireshark as the packet comment (frame.comment) and kept by
 * editcap / tshark. Little-endian, nanosecond timestamps (if_tsresol 9).
 */
const LINKTYPE_ETHERNET = 1;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

const END_OF_OPTIONS = Buffer.alloc(4);

export class PcapngWriter {
  private readonly ifaces = new Map<number, number>();

  constructor(private readonly write: (b: Buffer) => void, private readonly snaplen: number, private readonly ifname: (ifindex: number) => string) {
    const shb = Buffer.alloc(16);
    shb.writeUInt32LE(0x1a2b3c4d, 0);
    shb.writeUInt16LE(1, 4);
    shb.writeUInt16LE(0, 6);
    shb.writeBigInt64LE(-1n, 8); // section length not given
    const app = option(4, Buffer.from('lvs-xdp capture')); // shb_userappl
    this.write(block(0x0a0d0d0a, Buffer.concat([shb, app, END_OF_OPTIONS])));
  }

  private iface(ifindex: number): number {
    let id = this.ifaces.get(ifindex);
    if (id !== undefined) return id;
    id = this.ifaces.size;
    this.ifaces.set(ifindex, id);
    const head = Buffer.alloc(8);
    head.writeUInt16LE(LINKTYPE_ETHERNET, 0);
    head.writeUInt32LE(this.snaplen, 4);
    this.write(block(1, Buffer.concat([
      head,
      option(2, Buffer.from(this.ifname(ifindex))), // if_name
      option(9, Buffer.from([9])),                  // if_tsresol: nanoseconds
      END_OF_OPTIONS,
    ])));
    return id;
  }

  /** One frame: `data` (caplen bytes) of a frame `len` bytes long, at `tsNs` since the epoch. */
  packet(ifindex: number, tsNs: bigint, data: Buffer, len: number, comment: string): void {
    const id = this.iface(ifindex);
    const head = Buffer.alloc(20);
    head.writeUInt32LE(id, 0);
    head.writeUInt32LE(Number(tsNs >> 32n), 4);
    head.writeUInt32LE(Number(tsNs & 0xffffffffn), 8);
    head.writeUInt32LE(data.length, 12);
    head.writeUInt32LE(len, 16);
    const frame = Buffer.alloc(pad4(data.length));
    data.copy(frame);
    this.write(block(6, Buffer.concat([head, frame, option(1, Buffer.from(comment)), END_OF_OPTIONS])));
  }
}

/** Reads back what PcapngWriter wrote (the tests' check of the comments; not a general reader). */
export function readPcapng(b: Buffer): { ifindexName: string[]; packets: { iface: number; tsNs: bigint; data: Buffer; len: number; comment?: string }[] } {
  const names: string[] = [];
  const packets: { iface: number; tsNs: bigint; data: Buffer; len: number; comment?: string }[] = [];
  let off = 0;
  while (off + 12 <= b.length) {
    const type = b.readUInt32LE(off);
    const len = b.readUInt32LE(off + 4);
    const body = b.subarray(off + 8, off + len - 4);
    const opts = (from: number): Map<number, Buffer> => {
      const m = new Map<number, Buffer>();
      let o = from;
      while (o + 4 <= body.length) {
        const code = body.readUInt16LE(o);
        const l = body.readUInt16LE(o + 2);
        if (code === 0) break;
        m.set(code, body.subarray(o + 4, o + 4 + l));
        o += 4 + pad4(l);
      }
      return m;
    };
    if (type === 1) names.push(opts(8).get(2)?.toString() ?? '');
    if (type === 6) {
      const caplen = body.readUInt32LE(12);
      const c = opts(20 + pad4(caplen)).get(1);
      packets.push({
        iface: body.readUInt32LE(0), tsNs: (BigInt(body.readUInt32LE(4)) << 32n) | BigInt(body.readUInt32LE(8)),
        data: Buffer.from(body.subarray(20, 20 + caplen)), len: body.readUInt32LE(16), ...(c ? { comment: c.toString() } : {}),
      });
    }
    off += len;
  }
  return { ifindexName: names, packets };
}
