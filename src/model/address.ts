/**
 * Strict IP address, netmask and MAC handling for the model.
 *
 * Parsing is strict on purpose (no "10.1", octal or hex IPv4 forms, no zone ids, no names): a rule
 * file or config that is ambiguous must fail instead of silently meaning another address.
 * IPv6 text is produced the way glibc's inet_ntop does (what ipvsadm prints): lower case, the
 * first longest run of two or more zero groups compressed, IPv4-mapped/compatible as dotted quad.
 *
 * Why not ipaddr.js (checked against 2.5): it accepts what inet_pton refuses ("10.1", "0x0a.0.0.1",
 * "010.0.0.1" = 8.0.0.1, zone ids "fe80::1%eth0"), prints embedded IPv4 in hex (::ffff:c000:201
 * where ipvsadm prints ::ffff:192.0.2.1), and reads "::1.2.3.4", the form inet_ntop prints for
 * ::/96, as ::ffff:1.2.3.4. Wrapping it would take more code than this file. It stays a dev
 * dependency: test/unit/address-oracle.test.ts cross-checks both where they define the same thing.
 */

import { compareText } from './order.js';

export type Family = 4 | 6;

export interface ParsedAddress {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

const IPV4_PART = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${IPV4_PART}\\.${IPV4_PART}\\.${IPV4_PART}\\.${IPV4_PART}$`);
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(text: string): Uint8Array | null {
  if (!IPV4_RE.test(text)) return null;
  return Uint8Array.from(text.split('.').map(Number));
}

function parseGroups(text: string): number[] | null {
  if (text === '') return [];
  const groups = text.split(':');
  if (!groups.every((g) => HEX_GROUP_RE.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}

function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(':')) return null;
  let s = text;
  let v4: Uint8Array | null = null;
  if (s.includes('.')) {
    // Embedded IPv4 (e.g. ::ffff:192.0.2.1): parse it and stand in two zero groups for it.
    const lastColon = s.lastIndexOf(':');
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : null;
  if (!head || (halves.length === 2 && !tail)) return null;
  let words: number[];
  if (tail === null) {
    if (head.length !== 8) return null;
    words = head;
  } else {
    if (head.length + tail.length > 7) return null;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  if (v4) bytes.set(v4, 12);
  return bytes;
}

/** Parse an IPv4 or IPv6 address (no brackets, no port, no prefix). null when invalid. */
export function parseAddress(text: string): ParsedAddress | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: 6, bytes: v6 };
  return null;
}

/** Text form of an address as inet_ntop prints it. */
export function formatAddress(addr: ParsedAddress): string {
  const b = addr.bytes;
  if (addr.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // Find the first longest run (length >= 2) of zero words.
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    const embeddedV4 = i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff));
    if (embeddedV4) {
      out += `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
      break;
    }
    out += words[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Canonical text of an address, or null when the text is not an address. */
export function canonicalAddress(text: string): string | null {
  const parsed = parseAddress(text);
  return parsed ? formatAddress(parsed) : null;
}

/**
 * Parsed addresses for this module's own questions (family, order), never handed out: every
 * service and realserver id asks for its address's family, so a change to a configuration of
 * thousands asks for the same few thousand texts many times. Bounded: cleared when full.
 */
const memo = new Map<string, ParsedAddress | null>();
function parsedOnce(text: string): ParsedAddress | null {
  let p = memo.get(text);
  if (p === undefined) {
    if (memo.size >= 65536) memo.clear();
    p = parseAddress(text);
    memo.set(text, p);
  }
  return p;
}

/** Address family of a valid address text (throws on garbage: callers validate first). */
export function familyOf(addr: string): Family {
  const parsed = parsedOnce(addr);
  if (!parsed) throw new TypeError(`not an IP address: ${JSON.stringify(addr)}`);
  return parsed.family;
}

/** Order addresses as libipvs sorts them: IPv4 before IPv6, then numerically. */
export function compareAddresses(a: string, b: string): number {
  const pa = parsedOnce(a);
  const pb = parsedOnce(b);
  if (!pa || !pb) return compareText(a, b);
  if (pa.family !== pb.family) return pa.family - pb.family;
  for (let i = 0; i < pa.bytes.length; i++) {
    const d = pa.bytes[i]! - pb.bytes[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Address with port the way ipvsadm prints it: a.b.c.d:port or [v6]:port. */
export function formatAddrPort(addr: string, port: number): string {
  return familyOf(addr) === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** The 16-byte mask of a prefix length (an IPv4 address uses the first 4 bytes). */
export function prefixMask(prefix: number): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < prefix; i++) b[i >> 3]! |= 0x80 >> (i & 7);
  return b;
}

/** Full-length prefix: the default persistence netmask (/32 or /128, one client per template). */
export function fullPrefix(family: Family): number {
  return family === 4 ? 32 : 128;
}

/**
 * Parse a persistence netmask (ipvsadm -M): a prefix length ("24", "/24") for either family, a
 * dotted netmask for IPv4, or an IPv6 mask in address form. Non-contiguous masks are refused
 * since the data plane masks with a prefix. Returns the prefix length, or an error string.
 */
export function parseNetmask(text: string, family: Family): number | string {
  const max = fullPrefix(family);
  const plen = /^\/?(\d{1,3})$/.exec(text);
  if (plen) {
    const n = Number(plen[1]);
    return n <= max ? n : `prefix length ${n} out of range 0..${max} for IPv${family}`;
  }
  const parsed = parseAddress(text);
  if (!parsed) return `${JSON.stringify(text)} is neither a netmask nor a prefix length`;
  if (parsed.family !== family) return `IPv${parsed.family} netmask ${text} on an IPv${family} service`;
  let n = 0;
  let seenZero = false;
  for (const byte of parsed.bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      if (byte & (1 << bit)) {
        if (seenZero) return `netmask ${text} is not contiguous`;
        n++;
      } else {
        seenZero = true;
      }
    }
  }
  return n;
}

/** Canonical netmask text: dotted quad for IPv4 (as ipvsadm prints), prefix length for IPv6. */
export function formatNetmask(prefix: number, family: Family): string {
  if (family === 6) return String(prefix);
  const bytes = new Uint8Array(4);
  for (let i = 0; i < prefix; i++) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return formatAddress({ family: 4, bytes });
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Canonical MAC (lower-case, colon separated), or null. Accepts ':' or '-' separators. */
export function canonicalMac(text: string): string | null {
  if (!MAC_RE.test(text)) return null;
  return text.toLowerCase().replace(/-/g, ':');
}

/** Linux interface names: 1..15 bytes, no whitespace, '/' or ':' (IFNAMSIZ 16 with the NUL). */
export function isValidIfname(name: string): boolean {
  return /^[^\s/:]{1,15}$/.test(name) && name !== '.' && name !== '..';
}
