/**
 * IPVS's connection synchronisation protocol, as the Linux kernel defines it
 * (net/netfilter/ipvs/ip_vs_sync.c, include/uapi/linux/ip_vs.h, include/net/ip_vs.h): the
 * master director sends datagrams of connection entries; a backup director inserts them into
 * its connection table so that flows survive a failover whatever the scheduler.
 *
 * Version 1 message (all multi-byte fields in network byte order):
 *   header, 8 bytes: reserved 0 (u8, "old nr_conns": a version 0 receiver sees 0 entries),
 *     syncid (u8), size (be16: the whole datagram), nr_conns (u8), version 1 (u8), spare 0 (u16)
 *   entries, each starting on a 4-byte boundary (zero padding before it, counted in size, none
 *     after the last one):
 *     type (u8: bit 0 = IPv6, no other bit may be set), protocol (u8), ver_size (be16: entry
 *     version in the top 4 bits, must be 0; the entry's length without its trailing padding in the
 *     low 12), flags (be32, IP_VS_CONN_F_*), state (be16), cport, vport, dport (be16), fwmark
 *     (be32), timeout (be32, seconds), caddr, vaddr, daddr (4 or 16 bytes each): 36 or 72 bytes,
 *     then optional parameters: type (u8), length (u8, never 0), data. IPVS_OPT_SEQ_DATA (1):
 *     in_seq then out_seq, each init_seq, delta, previous_delta (be32): 24 bytes;
 *     IPVS_OPT_PE_DATA (2): persistence engine data (<= 255 bytes); IPVS_OPT_PE_NAME (3): its
 *     engine's name (<= 16 bytes). A type with bit 6 (IPVS_OPT_F_PARAM) set is optional and
 *     skipped when unknown; an unknown type without it drops that entry (not the message).
 * Version 0 message (still accepted by current kernels; sent with sync_version=0): header
 *   nr_conns (u8), syncid (u8), size (be16); entries of 24 bytes, IPv4 only, no padding:
 *   reserved, protocol (u8), cport, vport, dport (be16), caddr, vaddr, daddr (4 bytes), flags
 *   (be16), state (be16), followed by 24 bytes of sequence data when flags has IN_SEQ or OUT_SEQ
 *   (the kernel copies its struct ip_vs_seq pair there in the sender's byte order: decoded here as
 *   little-endian, the byte order of every machine lvs-xdp runs on). No timeout, no fwmark.
 * A datagram whose byte 0 is 0, byte 5 is 1 and bytes 6-7 are 0 is version 1; anything else is
 * version 0 (ip_vs_process_message).
 *
 * Pure: no sockets here (src/sync/transport.ts sends and receives these bytes).
 */
import { isIP } from 'node:net';
import { LvsError } from '../errors.js';
import type { ConnStateName } from '../abi/generated.js';

// ---- constants of the protocol ------------------------------------------------------------

/** IP_VS_SYNC_GROUP and IP_VS_SYNC_PORT: the kernel's defaults when none is configured. */
export const SYNC_GROUP4 = '224.0.0.81';
export const SYNC_PORT = 8848;
/** The multicast TTL / hop limit the kernel uses when none is configured (start_sync_thread). */
export const SYNC_TTL = 1;
/** SYNC_PROTO_VER: the version byte of a version 1 header. */
export const SYNC_PROTO_VER = 1;

export const MESG_HEADER_LEN = 8; // struct ip_vs_sync_mesg
export const MESG_V0_HEADER_LEN = 4; // struct ip_vs_sync_mesg_v0
export const CONN_V4_LEN = 36; // struct ip_vs_sync_v4
export const CONN_V6_LEN = 72; // struct ip_vs_sync_v6
export const CONN_V0_LEN = 24; // struct ip_vs_sync_conn_v0 (SIMPLE_CONN_SIZE)
export const SEQ_OPTIONS_LEN = 24; // struct ip_vs_sync_conn_options: two struct ip_vs_seq of 3 x u32

export const STYPE_F_INET6 = 0x01;
export const SVER_SHIFT = 12;
export const SVER_MASK = 0x0fff;

export const IPVS_OPT_SEQ_DATA = 1;
export const IPVS_OPT_PE_DATA = 2;
export const IPVS_OPT_PE_NAME = 3;
/** Bit 6 of an option type: the option may be skipped by a receiver that does not know it. */
export const IPVS_OPT_F_PARAM = 1 << (7 - 1);

export const IP_VS_PEDATA_MAXLEN = 255;
export const IP_VS_PENAME_MAXLEN = 16;

/** IP protocol numbers IPVS synchronises (ip_vs_proto_get) and their number of states. */
export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132, AH: 51, ESP: 50 } as const;

// ---- connection flags (include/uapi/linux/ip_vs.h) -----------------------------------------

export const IP_VS_CONN_F = {
  FWD_MASK: 0x0007,
  MASQ: 0x0000,
  LOCALNODE: 0x0001,
  TUNNEL: 0x0002,
  DROUTE: 0x0003,
  BYPASS: 0x0004,
  SYNC: 0x0020,
  HASHED: 0x0040,
  NOOUTPUT: 0x0080,
  INACTIVE: 0x0100,
  OUT_SEQ: 0x0200,
  IN_SEQ: 0x0400,
  SEQ_MASK: 0x0600,
  NO_CPORT: 0x0800,
  TEMPLATE: 0x1000,
  ONE_PACKET: 0x2000,
} as const;

/** The flags a backup keeps from a sync entry (IP_VS_CONN_F_BACKUP_MASK). */
export const IP_VS_CONN_F_BACKUP_MASK =
  IP_VS_CONN_F.FWD_MASK | IP_VS_CONN_F.NOOUTPUT | IP_VS_CONN_F.INACTIVE | IP_VS_CONN_F.SEQ_MASK |
  IP_VS_CONN_F.NO_CPORT | IP_VS_CONN_F.TEMPLATE;

export type FwdMethodName = 'MASQ' | 'LOCALNODE' | 'TUNNEL' | 'DROUTE' | 'BYPASS';
const FWD_NAMES: readonly (FwdMethodName | undefined)[] = ['MASQ', 'LOCALNODE', 'TUNNEL', 'DROUTE', 'BYPASS'];

const FLAG_BITS: readonly [number, string][] = [
  [IP_VS_CONN_F.SYNC, 'SYNC'],
  [IP_VS_CONN_F.HASHED, 'HASHED'],
  [IP_VS_CONN_F.NOOUTPUT, 'NOOUTPUT'],
  [IP_VS_CONN_F.INACTIVE, 'INACTIVE'],
  [IP_VS_CONN_F.OUT_SEQ, 'OUT_SEQ'],
  [IP_VS_CONN_F.IN_SEQ, 'IN_SEQ'],
  [IP_VS_CONN_F.NO_CPORT, 'NO_CPORT'],
  [IP_VS_CONN_F.TEMPLATE, 'TEMPLATE'],
  [IP_VS_CONN_F.ONE_PACKET, 'ONE_PACKET'],
];

/**
 * IP_VS_CONN_F_* as names: the forwarding method first (`DROUTE`, or `FWD(5)` for a value the
 * kernel does not define), then each set bit, then any undefined bits as one hex value.
 */
export function connFlagNames(flags: number): string[] {
  const fwd = flags & IP_VS_CONN_F.FWD_MASK;
  const out: string[] = [FWD_NAMES[fwd] ?? `FWD(${fwd})`];
  let known = IP_VS_CONN_F.FWD_MASK;
  for (const [bit, name] of FLAG_BITS) {
    known |= bit;
    if (flags & bit) out.push(name);
  }
  const rest = (flags & ~known) >>> 0;
  if (rest) out.push(`0x${rest.toString(16)}`);
  return out;
}

// ---- states (include/net/ip_vs.h) ------------------------------------------------------------

/** IP_VS_TCP_S_* by value (the names ipvsadm -L -c prints). */
export const IP_VS_TCP_STATES = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT',
  'LAST_ACK', 'LISTEN', 'SYNACK',
] as const;
export type IpvsTcpState = (typeof IP_VS_TCP_STATES)[number];
export const IP_VS_TCP_S = Object.fromEntries(IP_VS_TCP_STATES.map((n, i) => [n, i])) as Record<IpvsTcpState, number>;
/** IP_VS_UDP_S_NORMAL: UDP (and AH/ESP) have one state. */
export const IP_VS_UDP_S_NORMAL = 0;
/** IP_VS_SCTP_S_* by value (current kernels). */
export const IP_VS_SCTP_STATES = [
  'NONE', 'INIT1', 'INIT', 'COOKIE_SENT', 'COOKIE_REPLIED', 'COOKIE_WAIT', 'COOKIE', 'COOKIE_ECHOED',
  'ESTABLISHED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECEIVED', 'SHUTDOWN_ACK_SENT', 'REJECTED', 'CLOSED',
] as const;
/** Persistence templates use IP_VS_CTPL_S_NONE / IP_VS_CTPL_S_ASSURED in the state field. */
export const IP_VS_CTPL_STATES = ['NONE', 'ASSURED'] as const;

/** Number of states of a protocol as the backup checks it (pp->num_states); undefined: IPVS
 *  has no such protocol and the backup drops the entry. */
export function protocolStates(protocol: number): number | undefined {
  switch (protocol) {
    case IPPROTO.TCP: return IP_VS_TCP_STATES.length;
    case IPPROTO.UDP: case IPPROTO.AH: case IPPROTO.ESP: return 1;
    case IPPROTO.SCTP: return IP_VS_SCTP_STATES.length;
    default: return undefined;
  }
}

/** The state's name as ipvsadm prints it (templates: the IP_VS_CTPL_S_* names). */
export function stateName(protocol: number, state: number, flags = 0): string {
  if (flags & IP_VS_CONN_F.TEMPLATE) return IP_VS_CTPL_STATES[state] ?? `TEMPLATE(${state})`;
  if (protocol === IPPROTO.TCP) return IP_VS_TCP_STATES[state] ?? `TCP(${state})`;
  if (protocol === IPPROTO.SCTP) return IP_VS_SCTP_STATES[state] ?? `SCTP(${state})`;
  if (protocol === IPPROTO.UDP) return state === 0 ? 'UDP' : `UDP(${state})`;
  return `${protocol}(${state})`;
}

// ---- lvs-xdp's connection states <-> IPVS's ---------------------------------------------------

/**
 * lvs-xdp state (bpf/lvs_abi.h LVS_CONN_STATE_LIST, inferred from the client's packets as IPVS
 * does for DR and Tun) -> the IPVS protocol state a backup stores:
 *   SYN_RECV -> IP_VS_TCP_S_SYN_RECV, ESTABLISHED -> IP_VS_TCP_S_ESTABLISHED,
 *   FIN_WAIT -> IP_VS_TCP_S_FIN_WAIT, CLOSE -> IP_VS_TCP_S_CLOSE, UDP -> IP_VS_UDP_S_NORMAL.
 * NONE is a stray, never a connection entry: never synchronised (null).
 */
export function ipvsStateOf(state: ConnStateName): { protocol: number; state: number } | null {
  switch (state) {
    case 'SYN_RECV': return { protocol: IPPROTO.TCP, state: IP_VS_TCP_S.SYN_RECV };
    case 'ESTABLISHED': return { protocol: IPPROTO.TCP, state: IP_VS_TCP_S.ESTABLISHED };
    case 'FIN_WAIT': return { protocol: IPPROTO.TCP, state: IP_VS_TCP_S.FIN_WAIT };
    case 'CLOSE': return { protocol: IPPROTO.TCP, state: IP_VS_TCP_S.CLOSE };
    case 'UDP': return { protocol: IPPROTO.UDP, state: IP_VS_UDP_S_NORMAL };
    case 'NONE': return null;
  }
}

/**
 * IPVS protocol state -> lvs-xdp state, for an entry a backup inserts. IPVS has more TCP states
 * than lvs-xdp; each maps to the lvs-xdp state with the same idle timeout role:
 *   NONE, SYN_SENT, SYN_RECV, LISTEN, SYNACK (handshake not complete) -> SYN_RECV
 *   ESTABLISHED -> ESTABLISHED
 *   FIN_WAIT, TIME_WAIT, CLOSE_WAIT, LAST_ACK (closing) -> FIN_WAIT
 *   CLOSE -> CLOSE;  UDP NORMAL -> UDP.
 * null: not a connection lvs-xdp can hold (templates, SCTP/AH/ESP, an out-of-range state).
 * For every lvs-xdp state s but NONE, lvsStateOf(ipvsStateOf(s)) === s.
 */
export function lvsStateOf(protocol: number, state: number, flags = 0): ConnStateName | null {
  if (flags & IP_VS_CONN_F.TEMPLATE) return null;
  if (protocol === IPPROTO.UDP) return state === IP_VS_UDP_S_NORMAL ? 'UDP' : null;
  if (protocol !== IPPROTO.TCP) return null;
  switch (IP_VS_TCP_STATES[state]) {
    case 'NONE': case 'SYN_SENT': case 'SYN_RECV': case 'LISTEN': case 'SYNACK': return 'SYN_RECV';
    case 'ESTABLISHED': return 'ESTABLISHED';
    case 'FIN_WAIT': case 'TIME_WAIT': case 'CLOSE_WAIT': case 'LAST_ACK': return 'FIN_WAIT';
    case 'CLOSE': return 'CLOSE';
    default: return null;
  }
}

/** lvs-xdp forwarding method -> IP_VS_CONN_F forwarding bits, and back (null: a method lvs-xdp
 *  does not have: LOCALNODE, BYPASS). LVS-NAT is IPVS's MASQ (0). */
export function ipvsFwdOf(method: 'dr' | 'tun' | 'nat'): number {
  return method === 'dr' ? IP_VS_CONN_F.DROUTE : method === 'tun' ? IP_VS_CONN_F.TUNNEL : IP_VS_CONN_F.MASQ;
}
export function lvsMethodOf(flags: number): 'dr' | 'tun' | 'nat' | null {
  const fwd = flags & IP_VS_CONN_F.FWD_MASK;
  return fwd === IP_VS_CONN_F.DROUTE ? 'dr' : fwd === IP_VS_CONN_F.TUNNEL ? 'tun' : fwd === IP_VS_CONN_F.MASQ ? 'nat' : null;
}

/**
 * The flags IPVS carries for a connection in this state: the forwarding method, and INACTIVE
 * unless it is an established TCP connection (IPVS counts those as ActiveConn; every other
 * connection, UDP included, as InActConn; ip_vs_bind_dest / set_tcp_state).
 */
export function ipvsConnFlags(method: 'dr' | 'tun' | 'nat', state: ConnStateName): number {
  return ipvsFwdOf(method) | (state === 'ESTABLISHED' ? 0 : IP_VS_CONN_F.INACTIVE);
}

// ---- messages as data -------------------------------------------------------------------------

/** struct ip_vs_seq as the sync protocol carries it. */
export interface SyncSeq {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

/** One connection entry (or persistence template: flags has TEMPLATE, cport 0). */
export interface SyncConn {
  family: 4 | 6;
  protocol: number;
  /** IP_VS_CONN_F_* (32 bits in version 1, 16 in version 0). */
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  /** Firewall mark of the service (version 1; 0 in version 0). */
  fwmark: number;
  /** Seconds the backup keeps the entry (version 1); 0: the backup's own timeout for the state. */
  timeout: number;
  caddr: string;
  vaddr: string;
  daddr: string;
  /** IPVS_OPT_SEQ_DATA: NAT sequence adjustment (the kernel sends it when flags has IN_SEQ/OUT_SEQ). */
  seq?: { in: SyncSeq; out: SyncSeq };
  /** IPVS_OPT_PE_DATA / IPVS_OPT_PE_NAME: a persistence engine's data (e.g. "sip" Call-ID). */
  peData?: Uint8Array;
  peName?: string;
}

/** An entry a backup skips, as the kernel does (the rest of the message is still used). */
export interface DroppedEntry {
  offset: number;
  reason: string;
}

export interface SyncMessage {
  version: 0 | 1;
  syncid: number;
  conns: SyncConn[];
  dropped: DroppedEntry[];
}

/** A datagram that is not a valid sync message: what is wrong and at which byte. */
export class SyncDecodeError extends LvsError {
  readonly offset: number;
  constructor(offset: number, what: string) {
    super(`sync message: byte ${offset}: ${what}`, 'SYNC_DECODE');
    this.offset = offset;
  }
}

/** A connection that cannot be put on the wire (a value out of its field's range). */
export class SyncEncodeError extends LvsError {
  constructor(what: string) {
    super(`sync encode: ${what}`, 'SYNC_ENCODE');
  }
}

// ---- addresses --------------------------------------------------------------------------------

function addrBytes(addr: string, family: 4 | 6, field: string): Buffer {
  if (isIP(addr) !== family) throw new SyncEncodeError(`${field} ${JSON.stringify(addr)} is not an IPv${family} address`);
  if (family === 4) return Buffer.from(addr.split('.').map(Number));
  const out = Buffer.alloc(16);
  let s = addr;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const b = v4tail[1]!.split('.').map(Number);
    s = s.slice(0, -v4tail[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function addrText(buf: Buffer, at: number, family: 4 | 6): string {
  if (family === 4) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(at + i * 2));
  // RFC 5952: the longest run (>= 2) of zero groups becomes '::'
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address (what decode returns), for comparisons. */
export function canonicalAddr(addr: string): string {
  const family = isIP(addr);
  if (family !== 4 && family !== 6) throw new SyncEncodeError(`${JSON.stringify(addr)} is not an IP address`);
  return addrText(addrBytes(addr, family, 'address'), 0, family);
}

// ---- encoding ---------------------------------------------------------------------------------

function checkUint(v: number, bits: number, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 2 ** bits - 1) throw new SyncEncodeError(`${field} ${v} is not a ${bits}-bit unsigned value`);
}

/** The length of a version 1 entry without its trailing padding (the low 12 bits of ver_size). */
export function entryLength(c: SyncConn): number {
  let len = c.family === 6 ? CONN_V6_LEN : CONN_V4_LEN;
  if (c.seq) len += 2 + SEQ_OPTIONS_LEN;
  if (c.peData) len += 2 + c.peData.length;
  if (c.peName !== undefined) len += 2 + Buffer.byteLength(c.peName);
  return len;
}

function writeEntryV1(c: SyncConn, out: Buffer, at: number): void {
  checkUint(c.protocol, 8, 'protocol');
  checkUint(c.flags, 32, 'flags');
  checkUint(c.state, 16, 'state');
  for (const f of ['cport', 'vport', 'dport'] as const) checkUint(c[f], 16, f);
  checkUint(c.fwmark, 32, 'fwmark');
  checkUint(c.timeout, 32, 'timeout');
  const len = entryLength(c);
  out[at] = c.family === 6 ? STYPE_F_INET6 : 0;
  out[at + 1] = c.protocol;
  out.writeUInt16BE(len & SVER_MASK, at + 2); // entry version 0 in the top 4 bits
  out.writeUInt32BE(c.flags, at + 4);
  out.writeUInt16BE(c.state, at + 8);
  out.writeUInt16BE(c.cport, at + 10);
  out.writeUInt16BE(c.vport, at + 12);
  out.writeUInt16BE(c.dport, at + 14);
  out.writeUInt32BE(c.fwmark, at + 16);
  out.writeUInt32BE(c.timeout, at + 20);
  const alen = c.family === 6 ? 16 : 4;
  addrBytes(c.caddr, c.family, 'caddr').copy(out, at + 24);
  addrBytes(c.vaddr, c.family, 'vaddr').copy(out, at + 24 + alen);
  addrBytes(c.daddr, c.family, 'daddr').copy(out, at + 24 + 2 * alen);
  let p = at + 24 + 3 * alen;
  if (c.seq) {
    out[p++] = IPVS_OPT_SEQ_DATA;
    out[p++] = SEQ_OPTIONS_LEN;
    for (const s of [c.seq.in, c.seq.out]) {
      for (const v of [s.initSeq, s.delta, s.previousDelta]) {
        checkUint(v, 32, 'sequence value');
        out.writeUInt32BE(v, p);
        p += 4;
      }
    }
  }
  // the kernel sends the engine's name only after its data (ip_vs_sync_conn)
  if (c.peData) {
    out[p++] = IPVS_OPT_PE_DATA;
    out[p++] = c.peData.length;
    Buffer.from(c.peData).copy(out, p);
    p += c.peData.length;
  }
  if (c.peName !== undefined) {
    const name = Buffer.from(c.peName);
    out[p++] = IPVS_OPT_PE_NAME;
    out[p++] = name.length;
    name.copy(out, p);
  }
}

function checkOptions(c: SyncConn): void {
  if (c.family !== 4 && c.family !== 6) throw new SyncEncodeError(`family ${String(c.family)} is not 4 or 6`);
  if (c.peData && (c.peData.length === 0 || c.peData.length > IP_VS_PEDATA_MAXLEN)) {
    throw new SyncEncodeError(`persistence engine data of ${c.peData.length} bytes (1..${IP_VS_PEDATA_MAXLEN})`);
  }
  if (c.peName !== undefined) {
    const n = Buffer.byteLength(c.peName);
    if (n === 0 || n > IP_VS_PENAME_MAXLEN) throw new SyncEncodeError(`persistence engine name of ${n} bytes (1..${IP_VS_PENAME_MAXLEN})`);
  }
}

export interface EncodeOptions {
  syncid: number;
  /** sync-maxlen: the longest UDP payload a message may have (syncMaxlen() computes the kernel's). */
  maxLen: number;
}

/** nr_conns is one byte: a message never holds more entries (the kernel does not check this). */
export const MAX_CONNS_PER_MESG = 255;

/**
 * Version 1 messages for these entries, packed as the kernel's master packs its sync buffer
 * (ip_vs_sync_conn): entries in order, each padded to a 4-byte boundary from the message start;
 * a new message starts when the next entry (with its padding) would pass maxLen. An entry longer
 * than maxLen on its own gets a message of its own (the kernel sizes that buffer to fit it).
 */
export function encode(conns: readonly SyncConn[], opts: EncodeOptions): Buffer[] {
  checkUint(opts.syncid, 8, 'syncid');
  if (!Number.isInteger(opts.maxLen) || opts.maxLen < 1 || opts.maxLen > 65535) throw new SyncEncodeError(`maxLen ${opts.maxLen} (1..65535)`);
  const out: Buffer[] = [];
  let batch: { c: SyncConn; at: number }[] = [];
  let size = MESG_HEADER_LEN;
  const flush = () => {
    if (batch.length === 0) return;
    const buf = Buffer.alloc(size);
    buf[1] = opts.syncid;
    buf.writeUInt16BE(size, 2);
    buf[4] = batch.length;
    buf[5] = SYNC_PROTO_VER;
    for (const { c, at } of batch) writeEntryV1(c, buf, at);
    out.push(buf);
    batch = [];
    size = MESG_HEADER_LEN;
  };
  for (const c of conns) {
    checkOptions(c);
    const len = entryLength(c);
    if (len > SVER_MASK) throw new SyncEncodeError(`entry of ${len} bytes does not fit ver_size`);
    let pad = (4 - size) & 3;
    if (batch.length > 0 && (size + pad + len > opts.maxLen || batch.length === MAX_CONNS_PER_MESG)) {
      flush();
      pad = 0;
    }
    if (MESG_HEADER_LEN + len > 65535) throw new SyncEncodeError(`entry of ${len} bytes does not fit a message`);
    batch.push({ c, at: size + pad });
    size += pad + len;
  }
  flush();
  return out;
}

/** Version 0 messages (IPv4 only, no timeout/fwmark/persistence data): what a kernel with
 *  sync_version=0 sends (ip_vs_sync_conn_v0), for talking to very old backups. */
export function encodeV0(conns: readonly SyncConn[], opts: EncodeOptions): Buffer[] {
  checkUint(opts.syncid, 8, 'syncid');
  const out: Buffer[] = [];
  let batch: SyncConn[] = [];
  let size = MESG_V0_HEADER_LEN;
  const lenOf = (c: SyncConn) => CONN_V0_LEN + (c.flags & IP_VS_CONN_F.SEQ_MASK ? SEQ_OPTIONS_LEN : 0);
  const flush = () => {
    if (batch.length === 0) return;
    const buf = Buffer.alloc(size);
    buf[0] = batch.length;
    buf[1] = opts.syncid;
    buf.writeUInt16BE(size, 2);
    let p = MESG_V0_HEADER_LEN;
    for (const c of batch) {
      buf[p + 1] = c.protocol;
      buf.writeUInt16BE(c.cport, p + 2);
      buf.writeUInt16BE(c.vport, p + 4);
      buf.writeUInt16BE(c.dport, p + 6);
      addrBytes(c.caddr, 4, 'caddr').copy(buf, p + 8);
      addrBytes(c.vaddr, 4, 'vaddr').copy(buf, p + 12);
      addrBytes(c.daddr, 4, 'daddr').copy(buf, p + 16);
      buf.writeUInt16BE(c.flags & ~IP_VS_CONN_F.HASHED, p + 20);
      buf.writeUInt16BE(c.state, p + 22);
      if (c.flags & IP_VS_CONN_F.SEQ_MASK) {
        let q = p + CONN_V0_LEN;
        for (const s of [c.seq!.in, c.seq!.out]) {
          for (const v of [s.initSeq, s.delta, s.previousDelta]) {
            buf.writeUInt32LE(v, q);
            q += 4;
          }
        }
      }
      p += lenOf(c);
    }
    out.push(buf);
    batch = [];
    size = MESG_V0_HEADER_LEN;
  };
  for (const c of conns) {
    if (c.family !== 4) throw new SyncEncodeError('version 0 carries IPv4 connections only');
    checkUint(c.flags, 16, 'flags (version 0)');
    if (Boolean(c.flags & IP_VS_CONN_F.SEQ_MASK) !== Boolean(c.seq)) throw new SyncEncodeError('version 0: sequence data exactly when flags has IN_SEQ/OUT_SEQ');
    const len = lenOf(c);
    if (batch.length > 0 && (size + len > opts.maxLen || batch.length === MAX_CONNS_PER_MESG)) flush();
    batch.push(c);
    size += len;
  }
  flush();
  return out;
}

// ---- decoding ---------------------------------------------------------------------------------

/** Whether a backup with this syncid takes a message from a master with that one (0: all). */
export function syncidAccepted(backupSyncid: number, messageSyncid: number): boolean {
  return backupSyncid === 0 || backupSyncid === messageSyncid;
}

/** The syncid byte of a datagram (byte 1 in both versions), or undefined when too short. */
export function peekSyncid(buf: Uint8Array): number | undefined {
  return buf.length >= MESG_V0_HEADER_LEN ? buf[1] : undefined;
}

/**
 * Decodes one datagram as ip_vs_process_message does. Throws SyncDecodeError (only that) where
 * the kernel drops the whole message: header too short, size field not the datagram's length,
 * an entry truncated or longer than the message, an unknown entry version or type, a malformed
 * option. Entries the kernel skips one by one (unknown mandatory option, protocol IPVS does not
 * have, state out of range, persistence data without an engine name) are listed in `dropped`.
 * Unlike the kernel, a datagram whose byte 0 is 0 but whose version byte is not 1 (or spare not
 * 0) is refused as "bad version" rather than read as an empty version 0 message.
 */
export function decode(input: Uint8Array): SyncMessage {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const n = buf.length;
  if (n < MESG_V0_HEADER_LEN) throw new SyncDecodeError(0, `message header too short: ${n} bytes, at least ${MESG_V0_HEADER_LEN}`);
  const size = buf.readUInt16BE(2);
  if (size !== n) throw new SyncDecodeError(2, `size field says ${size} bytes, the datagram has ${n}`);
  const syncid = buf[1]!;
  if (buf[0] !== 0) return decodeV0(buf, syncid);
  if (n < MESG_HEADER_LEN) throw new SyncDecodeError(0, `version 1 header truncated: ${n} bytes, needs ${MESG_HEADER_LEN}`);
  if (buf[5] !== SYNC_PROTO_VER) throw new SyncDecodeError(5, `bad version ${buf[5]} (byte 0 is 0: version ${SYNC_PROTO_VER} expected)`);
  if (buf.readUInt16BE(6) !== 0) throw new SyncDecodeError(6, `spare field is 0x${buf.readUInt16BE(6).toString(16)}, must be 0`);
  const nr = buf[4]!;
  const conns: SyncConn[] = [];
  const dropped: DroppedEntry[] = [];
  let p = MESG_HEADER_LEN;
  for (let i = 0; i < nr; i++) {
    if (p + CONN_V4_LEN > n) throw new SyncDecodeError(p, `entry ${i} of ${nr} truncated: ${Math.max(0, n - p)} bytes left, an entry has at least ${CONN_V4_LEN}`);
    const verSize = buf.readUInt16BE(p + 2);
    const len = verSize & SVER_MASK;
    const end = p + len;
    if (end > n) throw new SyncDecodeError(p + 2, `entry ${i} says ${len} bytes, only ${n - p} left in the message`);
    if (verSize >> SVER_SHIFT) throw new SyncDecodeError(p + 2, `entry ${i}: unknown entry version ${verSize >> SVER_SHIFT}`);
    const r = decodeEntryV1(buf, p, end, i);
    if ('dropped' in r) dropped.push(r.dropped);
    else conns.push(r.conn);
    p += (len + 3) & ~3; // entries start on 4-byte boundaries
  }
  return { version: 1, syncid, conns, dropped };
}

function decodeEntryV1(buf: Buffer, at: number, end: number, i: number): { conn: SyncConn } | { dropped: DroppedEntry } {
  const type = buf[at]!;
  let family: 4 | 6;
  if (type & STYPE_F_INET6) family = 6;
  else if (type === 0) family = 4;
  else throw new SyncDecodeError(at, `entry ${i}: unknown type 0x${type.toString(16)}`);
  const alen = family === 6 ? 16 : 4;
  const fixed = family === 6 ? CONN_V6_LEN : CONN_V4_LEN;
  if (at + fixed > end) throw new SyncDecodeError(at + 2, `entry ${i}: IPv${family} entry of ${end - at} bytes, the fixed part alone has ${fixed}`);
  const conn: SyncConn = {
    family,
    protocol: buf[at + 1]!,
    flags: buf.readUInt32BE(at + 4),
    state: buf.readUInt16BE(at + 8),
    cport: buf.readUInt16BE(at + 10),
    vport: buf.readUInt16BE(at + 12),
    dport: buf.readUInt16BE(at + 14),
    fwmark: buf.readUInt32BE(at + 16),
    timeout: buf.readUInt32BE(at + 20),
    caddr: addrText(buf, at + 24, family),
    vaddr: addrText(buf, at + 24 + alen, family),
    daddr: addrText(buf, at + 24 + 2 * alen, family),
  };
  let p = at + fixed;
  while (p < end) {
    if (p + 2 > end) throw new SyncDecodeError(p, `entry ${i}: option header truncated (1 byte left in the entry)`);
    const ptype = buf[p]!;
    const plen = buf[p + 1]!;
    if (plen === 0) throw new SyncDecodeError(p + 1, `entry ${i}: option ${ptype} has length 0`);
    if (p + 2 + plen > end) throw new SyncDecodeError(p + 1, `entry ${i}: option ${ptype} of ${plen} bytes passes the entry's end by ${p + 2 + plen - end}`);
    const data = buf.subarray(p + 2, p + 2 + plen);
    switch (ptype & ~IPVS_OPT_F_PARAM) {
      case IPVS_OPT_SEQ_DATA:
        if (plen !== SEQ_OPTIONS_LEN) throw new SyncDecodeError(p + 1, `entry ${i}: sequence option of ${plen} bytes, must be ${SEQ_OPTIONS_LEN}`);
        if (conn.seq) throw new SyncDecodeError(p, `entry ${i}: sequence option twice`);
        conn.seq = {
          in: { initSeq: data.readUInt32BE(0), delta: data.readUInt32BE(4), previousDelta: data.readUInt32BE(8) },
          out: { initSeq: data.readUInt32BE(12), delta: data.readUInt32BE(16), previousDelta: data.readUInt32BE(20) },
        };
        break;
      case IPVS_OPT_PE_DATA:
        if (conn.peData) throw new SyncDecodeError(p, `entry ${i}: persistence engine data twice`);
        conn.peData = Uint8Array.from(data);
        break;
      case IPVS_OPT_PE_NAME:
        if (plen > IP_VS_PENAME_MAXLEN) throw new SyncDecodeError(p + 1, `entry ${i}: persistence engine name of ${plen} bytes, at most ${IP_VS_PENAME_MAXLEN}`);
        if (conn.peName !== undefined) throw new SyncDecodeError(p, `entry ${i}: persistence engine name twice`);
        conn.peName = data.toString('latin1');
        break;
      default:
        // optional parameters are skipped; an unknown mandatory one drops this entry only (the
        // kernel stops reading the entry there: what follows it is not checked)
        if (!(ptype & IPVS_OPT_F_PARAM)) return { dropped: { offset: p, reason: `entry ${i}: unknown mandatory option ${ptype}` } };
    }
    p += 2 + plen;
  }
  const bad = entryCheck(conn, i);
  if (bad) return { dropped: { offset: at, reason: bad } };
  if (conn.peData && conn.peName === undefined) return { dropped: { offset: at, reason: `entry ${i}: persistence engine data without the engine's name` } };
  return { conn };
}

/** The backup's per-entry checks (protocol known, state in range; templates are not checked). */
function entryCheck(c: SyncConn, i: number): string | undefined {
  if (c.flags & IP_VS_CONN_F.TEMPLATE) return undefined;
  const states = protocolStates(c.protocol);
  if (states === undefined) return `entry ${i}: protocol ${c.protocol} is not one IPVS synchronises`;
  if (c.state >= states) return `entry ${i}: state ${c.state} out of range for protocol ${c.protocol} (${states} states)`;
  return undefined;
}

function decodeV0(buf: Buffer, syncid: number): SyncMessage {
  const n = buf.length;
  const nr = buf[0]!;
  const conns: SyncConn[] = [];
  const dropped: DroppedEntry[] = [];
  let p = MESG_V0_HEADER_LEN;
  for (let i = 0; i < nr; i++) {
    if (p + CONN_V0_LEN > n) throw new SyncDecodeError(p, `version 0 entry ${i} of ${nr} truncated: ${Math.max(0, n - p)} bytes left, an entry has ${CONN_V0_LEN}`);
    const flags = buf.readUInt16BE(p + 20);
    const conn: SyncConn = {
      family: 4,
      protocol: buf[p + 1]!,
      flags,
      state: buf.readUInt16BE(p + 22),
      cport: buf.readUInt16BE(p + 2),
      vport: buf.readUInt16BE(p + 4),
      dport: buf.readUInt16BE(p + 6),
      fwmark: 0,
      timeout: 0,
      caddr: addrText(buf, p + 8, 4),
      vaddr: addrText(buf, p + 12, 4),
      daddr: addrText(buf, p + 16, 4),
    };
    const at = p;
    if (flags & IP_VS_CONN_F.SEQ_MASK) {
      if (p + CONN_V0_LEN + SEQ_OPTIONS_LEN > n) throw new SyncDecodeError(p + CONN_V0_LEN, `version 0 entry ${i}: sequence data truncated: ${n - p - CONN_V0_LEN} of ${SEQ_OPTIONS_LEN} bytes`);
      const q = p + CONN_V0_LEN;
      conn.seq = {
        in: { initSeq: buf.readUInt32LE(q), delta: buf.readUInt32LE(q + 4), previousDelta: buf.readUInt32LE(q + 8) },
        out: { initSeq: buf.readUInt32LE(q + 12), delta: buf.readUInt32LE(q + 16), previousDelta: buf.readUInt32LE(q + 20) },
      };
      p += CONN_V0_LEN + SEQ_OPTIONS_LEN;
    } else {
      p += CONN_V0_LEN;
    }
    const bad = entryCheck(conn, i);
    if (bad) dropped.push({ offset: at, reason: bad });
    else conns.push(conn);
  }
  return { version: 0, syncid, conns, dropped };
}

// ---- sync-maxlen --------------------------------------------------------------------------------

/**
 * The kernel's sync_maxlen (start_sync_thread): the UDP payload limit of a message. hlen is the
 * IP + UDP header (28 for IPv4, 48 for IPv6). Master: requested clamped to 1..65535-hlen, or
 * 1500 - hlen when none (1500 "for compatibility", whatever the interface's MTU). Backup (the
 * receive buffer): requested clamped to 1024..65535-hlen, or the interface MTU (clamped to
 * 1500..65535) - hlen.
 */
export function syncMaxlen(o: { role: 'master' | 'backup'; family: 4 | 6; requested?: number; ifaceMtu?: number }): number {
  const hlen = o.family === 6 ? 40 + 8 : 20 + 8;
  const mtu = o.role === 'backup' ? Math.min(Math.max(o.ifaceMtu ?? 1500, 1500), 65535) : 1500;
  const min = o.role === 'backup' ? 1024 : 1;
  if (o.requested) return Math.min(Math.max(o.requested, min), 65535 - hlen);
  return mtu - hlen;
}
