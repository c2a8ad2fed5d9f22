/**
 * The links of this network namespace over rtnetlink (RTM_GETLINK dump), as `ip -j -d link show`
 * describes them (LinkDesc, src/dataplane/l2addrs.ts): one syscall round trip instead of a
 * process per CLI change. The request and the attribute walk are here; native/netlink.cc only
 * moves the bytes. Numbers from linux/netlink.h, linux/rtnetlink.h and linux/if_link.h (UAPI).
 */
import { netlinkDump } from '../native/index.js';
import type { LinkDesc } from '../dataplane/l2addrs.js';

const NETLINK_ROUTE = 0;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_EXT_MASK = 29;
const IFLA_LINK_NETNSID = 37;
const IFLA_INFO_KIND = 1;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER

const align4 = (n: number) => (n + 3) & ~3;
let seq = 0;

/** RTM_GETLINK dump request for every family, statistics left out (they are most of the answer). */
export function linkDumpRequest(sequence: number): Buffer {
  const len = NLMSG_HDRLEN + IFINFOMSG_LEN + 8;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(RTM_GETLINK, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  b.writeUInt32LE(sequence, 8);
  // ifinfomsg: all zero (AF_UNSPEC, every link)
  b.writeUInt16LE(8, NLMSG_HDRLEN + IFINFOMSG_LEN);
  b.writeUInt16LE(IFLA_EXT_MASK, NLMSG_HDRLEN + IFINFOMSG_LEN + 2);
  b.writeUInt32LE(RTEXT_FILTER_SKIP_STATS, NLMSG_HDRLEN + IFINFOMSG_LEN + 4);
  return b;
}

/** Attributes in buf[start, end): type -> [offset, length] of the payload (the first of a type). */
function attrs(buf: Buffer, start: number, end: number): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (let off = start; off + 4 <= end;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > end) throw new Error(`rtnetlink: attribute of length ${len} at ${off} overruns its message`);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, [off + 4, len - 4]);
    off += align4(len);
  }
  return out;
}

const cstr = (buf: Buffer, [off, len]: [number, number]) => {
  const nul = buf.indexOf(0, off);
  return buf.toString('latin1', off, nul >= 0 && nul < off + len ? nul : off + len);
};

/** LinkDesc of every RTM_NEWLINK message in a dump's answer. */
export function parseLinks(answer: Buffer): LinkDesc[] {
  type Raw = LinkDesc & { linkIndex?: number; masterIndex?: number };
  const raw: Raw[] = [];
  for (let off = 0; off + NLMSG_HDRLEN <= answer.length;) {
    const len = answer.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > answer.length) throw new Error(`rtnetlink: message of length ${len} at ${off} overruns the answer`);
    if (answer.readUInt16LE(off + 4) === RTM_NEWLINK && len >= NLMSG_HDRLEN + IFINFOMSG_LEN) {
      const ifi = off + NLMSG_HDRLEN;
      const a = attrs(answer, ifi + IFINFOMSG_LEN, off + len);
      const name = a.get(IFLA_IFNAME);
      if (name) {
        const l: Raw = { ifindex: answer.readInt32LE(ifi + 4), ifname: cstr(answer, name) };
        const addr = a.get(IFLA_ADDRESS);
        // ip prints a 6-byte address as a MAC; others (tunnels' IPv4 / IPv6 endpoints) are not
        // destinations lvs-xdp can accept, and isUnicastMac() refuses them anyway.
        if (addr) l.address = [...answer.subarray(addr[0], addr[0] + addr[1])].map((x) => x.toString(16).padStart(2, '0')).join(':');
        const lower = a.get(IFLA_LINK);
        // The lower device by name only when it is in this namespace (no IFLA_LINK_NETNSID), as ip does.
        if (lower && !a.has(IFLA_LINK_NETNSID)) l.linkIndex = answer.readInt32LE(lower[0]);
        const master = a.get(IFLA_MASTER);
        if (master) l.masterIndex = answer.readInt32LE(master[0]);
        const info = a.get(IFLA_LINKINFO);
        if (info) {
          const kind = attrs(answer, info[0], info[0] + info[1]).get(IFLA_INFO_KIND);
          l.linkinfo = kind ? { info_kind: cstr(answer, kind) } : {};
        }
        raw.push(l);
      }
    }
    off += align4(len);
  }
  const names = new Map(raw.map((l) => [l.ifindex, l.ifname]));
  return raw.map(({ linkIndex, masterIndex, ...l }) => {
    const link = linkIndex !== undefined && linkIndex !== l.ifindex ? names.get(linkIndex) : undefined;
    const master = masterIndex !== undefined ? names.get(masterIndex) : undefined;
    return { ...l, ...(link ? { link } : {}), ...(master ? { master } : {}) };
  });
}

/** The links of this namespace (one RTM_GETLINK dump). */
export function dumpLinks(): LinkDesc[] {
  seq = (seq + 1) >>> 0;
  return parseLinks(netlinkDump(NETLINK_ROUTE, linkDumpRequest(seq)));
}
