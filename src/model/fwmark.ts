/**
 * Firewall marks as lvs-xdp classifies them (XDP runs before netfilter: there is no skb->mark).
 * A mark is a set of (protocol, destination address or prefix, destination ports); packets that
 * match belong to the firewall-mark service of that mark (ipvsadm -A -f MARK) of their family.
 *
 * Pure: parsing and checking of the rules (config file, `lvs-xdp fwmark`), and the compilation
 * into the data plane's longest-prefix-match entries (bpf/lvs_abi.h, lvs_fwmarks): one entry per
 * (family, protocol, prefix) holding its own port ranges, then those of every shorter prefix that
 * covers it, so that the one longest match holds every range that may apply. A more specific
 * prefix wins; on one prefix, two marks may not share a port.
 */
import { compareText } from './order.js';
import { canonicalAddress, familyOf, fullPrefix, parseAddress, prefixMask, type Family } from './address.js';
import {
  MAX_FWMARK, PROTOCOLS, type FirewallMark, type MarkMatch, type PortRange, type Protocol, type VirtualService,
} from './types.js';
import type { ConfigIssue, FieldPath } from './validate.js';

/** Port ranges one data-plane entry holds (LVS_FWMARK_RANGES in bpf/lvs_abi.h). */
export const FWMARK_RANGES = 8;
export const ALL_PORTS: PortRange = { from: 0, to: 65535 };

export interface Prefix {
  family: Family;
  /** 16 bytes, network order, host bits zero (IPv4 in the first 4). */
  bytes: Uint8Array;
  plen: number;
}

/** `10.0.0.1`, `10.0.0.0/24`, `2001:db8::/64`: the prefix, or why not. */
export function parsePrefix(text: string): Prefix | string {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) return `${JSON.stringify(text)} is not an address or address/prefix-length`;
  const p = parseAddress(addr);
  if (!p) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address (names are not resolved)`;
  const max = fullPrefix(p.family);
  let plen = max;
  if (len !== undefined) {
    if (!/^\d+$/.test(len) || Number(len) > max) return `prefix length ${JSON.stringify(len)} out of range 0..${max}`;
    plen = Number(len);
  }
  const bytes = new Uint8Array(16);
  bytes.set(p.bytes);
  for (let i = plen; i < max; i++) {
    if (bytes[i >> 3]! & (0x80 >> (i & 7))) {
      return `${text} has host bits set (the prefix is ${formatPrefix({ family: p.family, bytes: masked(bytes, plen), plen })})`;
    }
  }
  return { family: p.family, bytes, plen };
}

function masked(bytes: Uint8Array, plen: number): Uint8Array {
  const mask = prefixMask(plen);
  return mask.map((m, i) => (bytes[i] ?? 0) & m);
}

/** Canonical text: the address alone for a host, else `addr/len`. */
export function formatPrefix(p: Prefix): string {
  const addr = canonicalAddress(p.family === 4 ? Array.from(p.bytes.subarray(0, 4)).join('.') : v6Text(p.bytes))!;
  return p.plen === fullPrefix(p.family) ? addr : `${addr}/${p.plen}`;
}

function v6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** Whether prefix `outer` holds every address of `inner` (same family). */
export function covers(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.plen > inner.plen) return false;
  for (let i = 0; i < outer.plen; i++) {
    const bit = 0x80 >> (i & 7);
    if ((outer.bytes[i >> 3]! & bit) !== (inner.bytes[i >> 3]! & bit)) return false;
  }
  return true;
}

/**
 * Ports as iptables writes them (`--dport 80`, `--dports 80,443`, `1000:2000`) or with a dash
 * (`1000-2000`); `all` or an empty text: every port.
 */
export function parsePorts(text: string): PortRange[] | string {
  const t = text.trim();
  if (t === '' || t === 'all') return [];
  const out: PortRange[] = [];
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:[:-](\d+))?$/.exec(part.trim());
    if (!m) return `${JSON.stringify(part)} is not a port or a range (80, 1000:2000, 1000-2000)`;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from > 65535 || to > 65535) return `port ${Math.max(from, to)} out of range 0..65535`;
    if (from > to) return `range ${part} ends before it starts`;
    out.push({ from, to });
  }
  return out;
}

/** `80`, `80,443`, `8000:8099`; `all` for every port. */
export function formatPorts(ports: readonly PortRange[]): string {
  if (ports.length === 0) return 'all';
  return ports.map((r) => (r.from === r.to ? String(r.from) : `${r.from}:${r.to}`)).join(',');
}

const PROTO_NUMBER: Readonly<Record<Protocol, number>> = { tcp: 6, udp: 17 };

/** One data-plane classification entry. */
export interface MarkEntry {
  family: Family;
  proto: number;
  prefix: Prefix;
  /** Own ranges first, then the covering prefixes' (longest first): the first holding the port wins. */
  ranges: (PortRange & { mark: number })[];
}

interface Rule {
  family: Family;
  proto: number;
  prefix: Prefix;
  range: PortRange;
  mark: number;
  path: FieldPath;
}

function nodeKey(r: { family: Family; proto: number; prefix: Prefix }): string {
  return `${r.family}/${r.proto}/${Buffer.from(r.prefix.bytes).toString('hex')}/${r.prefix.plen}`;
}

function rulesOf(marks: readonly FirewallMark[]): Rule[] {
  const rules: Rule[] = [];
  marks.forEach((m, i) => m.match.forEach((x, j) => {
    const prefix = parsePrefix(x.address);
    if (typeof prefix === 'string') return;
    const ranges = x.ports.length ? x.ports : [ALL_PORTS];
    ranges.forEach((range, k) => rules.push({
      family: prefix.family, proto: PROTO_NUMBER[x.protocol], prefix, range, mark: m.mark,
      path: ['marks', i, 'match', j, ...(x.ports.length ? ['ports', k] : [])],
    }));
  }));
  return rules;
}

/**
 * The data plane's entries of a set of marks, or the problems that keep them from being built:
 * two marks on one port of one prefix, or more ranges for a prefix than an entry holds.
 */
export function compileMarks(marks: readonly FirewallMark[]): { entries: MarkEntry[]; problems: ConfigIssue[] } {
  const nodes = new Map<string, { family: Family; proto: number; prefix: Prefix; rules: Rule[] }>();
  for (const r of rulesOf(marks)) {
    const k = nodeKey(r);
    let n = nodes.get(k);
    if (!n) nodes.set(k, (n = { family: r.family, proto: r.proto, prefix: r.prefix, rules: [] }));
    n.rules.push(r);
  }
  const problems: ConfigIssue[] = [];
  const proto = (n: number) => (n === 6 ? 'tcp' : 'udp');
  for (const n of nodes.values()) {
    for (let a = 0; a < n.rules.length; a++) {
      for (let b = a + 1; b < n.rules.length; b++) {
        const x = n.rules[a]!;
        const y = n.rules[b]!;
        if (x.mark !== y.mark && x.range.from <= y.range.to && y.range.from <= x.range.to) {
          problems.push({
            path: y.path,
            message: `${proto(n.proto)} ${formatPrefix(n.prefix)} port${x.range.from === x.range.to ? ` ${x.range.from}` : `s ${formatPorts([x.range])}`} is in mark ${x.mark} and in mark ${y.mark}: a packet can have one mark (give the port to one of them, or use a longer prefix)`,
          });
        }
      }
    }
  }
  const list = [...nodes.values()];
  const entries: MarkEntry[] = [];
  for (const n of list) {
    const outer = list.filter((o) => o !== n && o.proto === n.proto && covers(o.prefix, n.prefix))
      .sort((a, b) => b.prefix.plen - a.prefix.plen);
    const ranges = [n, ...outer].flatMap((o) => o.rules.map((r) => ({ ...r.range, mark: r.mark })));
    if (ranges.length > FWMARK_RANGES) {
      problems.push({
        path: n.rules[0]!.path.slice(0, 4),
        message: `${proto(n.proto)} ${formatPrefix(n.prefix)}: ${ranges.length} port ranges apply to this prefix (its own and those of the prefixes covering it), the data plane holds ${FWMARK_RANGES}; join ranges or split the prefixes`,
      });
    }
    entries.push({ family: n.family, proto: n.proto, prefix: n.prefix, ranges });
  }
  entries.sort((a, b) => compareText(nodeKey(a), nodeKey(b)));
  return { entries, problems };
}

/** Validate and canonicalise marks; problems go to `list` with the path of the offending field. */
export function checkMarks(marks: readonly FirewallMark[], list: ConfigIssue[]): FirewallMark[] {
  const seen = new Map<number, number>();
  const out = marks.map((m, i): FirewallMark => {
    const at = (...p: (string | number)[]): FieldPath => ['marks', i, ...p];
    if (typeof m.mark !== 'number' || !Number.isInteger(m.mark) || m.mark < 1 || m.mark > MAX_FWMARK) {
      list.push({ path: at('mark'), message: `mark ${String(m.mark)} out of range 1..${MAX_FWMARK}` });
    } else if (seen.has(m.mark)) {
      list.push({ path: at('mark'), message: `mark ${m.mark} defined twice (also marks[${seen.get(m.mark)}]): list its rules under one entry` });
    } else {
      seen.set(m.mark, i);
    }
    if (!Array.isArray(m.match) || m.match.length === 0) {
      list.push({ path: at('match'), message: `mark ${String(m.mark)}: match needs at least one rule ({ protocol, address, ports })` });
      return { mark: m.mark, match: [] };
    }
    const match = m.match.map((x, j): MarkMatch => {
      const copy: MarkMatch = { protocol: x.protocol, address: x.address, ports: [...(x.ports ?? [])] };
      if (!(PROTOCOLS as readonly string[]).includes(x.protocol)) {
        list.push({ path: at('match', j, 'protocol'), message: `protocol ${JSON.stringify(x.protocol)} is not tcp or udp` });
      }
      const p = typeof x.address === 'string' ? parsePrefix(x.address) : 'address missing';
      if (typeof p === 'string') list.push({ path: at('match', j, 'address'), message: p });
      else copy.address = formatPrefix(p);
      copy.ports.forEach((r, k) => {
        if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || r.from < 0 || r.to > 65535 || r.from > r.to) {
          list.push({ path: at('match', j, 'ports', k), message: `port range ${r.from}..${r.to} is not within 0..65535 in order` });
        }
      });
      return copy;
    });
    return { mark: m.mark, match };
  });
  if (list.length === 0) list.push(...compileMarks(out).problems);
  return out;
}

/**
 * Whether a port service's packets may classify to a mark that has a service of its family: the
 * data plane then classifies them first (LVS_SVC_F_MARKED), as IPVS looks marks up first.
 */
export function markCovers(entries: readonly MarkEntry[], withService: ReadonlySet<number>, svc: VirtualService): boolean {
  if (svc.fwmark) return false;
  const best = longestEntry(entries, familyOf(svc.vip), PROTO_NUMBER[svc.protocol], svc.vip);
  // The VIP is one address: its packets meet exactly this entry (its ranges include the covering
  // prefixes'), and their first range holding the port names the mark.
  if (!best) return false;
  if (svc.port !== 0) {
    const mark = best.ranges.find((r) => r.from <= svc.port && svc.port <= r.to)?.mark;
    return mark !== undefined && withService.has(mark);
  }
  return best.ranges.some((r) => withService.has(r.mark));
}

function longestEntry(entries: readonly MarkEntry[], family: Family, proto: number, daddr: string): MarkEntry | undefined {
  const a = parsePrefix(daddr);
  if (typeof a === 'string') return undefined;
  let best: MarkEntry | undefined;
  for (const e of entries) {
    if (e.family === family && e.proto === proto && covers(e.prefix, a) && (!best || e.prefix.plen > best.prefix.plen)) best = e;
  }
  return best;
}

/** The mark a packet classifies to (the data plane's lvs_fwmark_classify), 0 when none. */
export function classify(entries: readonly MarkEntry[], family: Family, protocol: Protocol, daddr: string, dport: number): number {
  return longestEntry(entries, family, PROTO_NUMBER[protocol], daddr)?.ranges.find((r) => r.from <= dport && dport <= r.to)?.mark ?? 0;
}
