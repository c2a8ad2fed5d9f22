/**
 * What an LVS realserver needs, as pure functions over an observation of the kernel's state
 * (src/realserver/observe.ts reads it). `check` reports each requirement with the exact fix;
 * `setup` applies the sysctl writes planned here, so both agree on what "right" means.
 *
 * The requirements (LVS-HOWTO, "the ARP problem"; LVS-DR and LVS-Tun):
 *  - every VIP on `lo` as a host address (/32 or /128), on no other interface, and `lo` up: the
 *    realserver accepts packets to the VIP but owns no subnet with it;
 *  - IPv4 VIPs: the realserver must not answer ARP for the VIP (arp_ignore) nor use the VIP as
 *    the source of its own ARP requests (arp_announce), on ANY interface (a second NIC answers
 *    for the VIP on lo as readily as the first), or clients' routers learn the realserver's MAC
 *    for the VIP and bypass the director. IPv6 needs no sysctl: Linux answers neighbour
 *    solicitations only for addresses of the interface they arrive on; a proxy NDP entry for the
 *    VIP, or a tentative / dadfailed VIP, is still wrong;
 *  - DR: strict rp_filter on the interface clients' packets arrive on drops them when the route
 *    back to the clients leaves by another interface;
 *  - Tun: the decapsulation program on the interface the tunnels arrive on, with every VIP in its
 *    map; reverse path filtering not strict there (packets keep the client's source address);
 *    and, as advice, an MSS that leaves room for the director's outer header.
 */
import { ConfigError, InterfaceNotFoundError } from '../errors.js';
import { formatAddress, isValidIfname, parseAddress, type Family, type ParsedAddress } from '../model/address.js';
import { DECAP_ABI } from '../abi/decap-generated.js';

export type Mode = 'dr' | 'tun';
export const MODES: readonly Mode[] = ['dr', 'tun'];

export interface Vip {
  /** Canonical text. */
  text: string;
  addr: ParsedAddress;
  /** 32 or 128. */
  prefix: number;
}

export function parseMode(value: unknown): Mode {
  if (value === 'dr' || value === 'tun') return value;
  throw new ConfigError(`must be dr or tun, not ${JSON.stringify(value)}`, { field: '--mode', hint: 'lvs-xdp realserver setup --mode dr|tun --vip ADDR' });
}

/** Unspecified, loopback, multicast (and IPv4 class E / broadcast), link-local, IPv4-mapped. */
function unusableAsVip(a: ParsedAddress): boolean {
  const b = a.bytes;
  if (a.family === 4) return b[0] === 0 || b[0] === 127 || b[0]! >= 224;
  const zeroUpTo = (n: number) => b.subarray(0, n).every((x) => x === 0);
  if (zeroUpTo(15) && b[15]! <= 1) return true;
  if (b[0] === 0xff) return true;
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return true;
  return zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff;
}

/** Parses, checks and de-duplicates VIPs (canonical text, input order). */
export function parseVips(values: readonly string[]): Vip[] {
  const out: Vip[] = [];
  for (const v of values) {
    const addr = parseAddress(v);
    if (!addr) throw new ConfigError(`${JSON.stringify(v)} is not an IPv4 or IPv6 address`, { field: '--vip' });
    if (unusableAsVip(addr)) {
      throw new ConfigError(`${v} cannot be a VIP (unspecified, loopback, multicast, link-local or IPv4-mapped)`, { field: '--vip' });
    }
    const text = formatAddress(addr);
    if (!out.some((x) => x.text === text)) out.push({ text, addr, prefix: addr.family === 4 ? 32 : 128 });
  }
  if (out.length === 0) throw new ConfigError('at least one VIP is needed', { field: '--vip' });
  return out;
}

// ---- observation ------------------------------------------------------------------------------

export interface LinkState {
  ifname: string;
  ifindex: number;
  up: boolean;
  mtu: number;
  /** IFF_NOARP (tunnels, lo): never answers ARP, so its ARP sysctls do not matter. */
  noarp?: boolean;
}

export interface IfAddr {
  ifname: string;
  family: Family;
  /** Canonical text. */
  local: string;
  prefixlen: number;
  scope: string;
  /** IPv6: duplicate address detection has not finished / failed: the address is not usable. */
  tentative?: boolean;
  dadfailed?: boolean;
}

export interface DefaultRoute {
  family: Family;
  dev?: string;
  gateway?: string;
  advmss?: number;
}

export interface DecapStatus {
  /** A link is pinned in this namespace's pin directory. */
  pinned: boolean;
  /** Interface the pinned link is attached to (undefined: defunct, e.g. its interface is gone). */
  linkIfname?: string;
  /** Program of the pinned link. */
  linkProgId?: number;
  /** Program attached to the device (0: none), and its name. */
  devProgId: number;
  devProgName?: string;
  /** VIPs in the pinned VIP map with their statistics; null when no map is pinned. */
  vips: Map<string, { packets: bigint; bytes: bigint }> | null;
}

export interface Observed {
  /** The interface checked (tunnels arrive on it; its per-device sysctls count). */
  dev: string;
  links: LinkState[];
  addrs: IfAddr[];
  /** Values under /proc/sys, by path relative to it ('net/ipv4/conf/all/arp_ignore'). */
  sysctl: Record<string, number | undefined>;
  defaultRoutes: DefaultRoute[];
  /** Proxy NDP entries (`ip -6 neigh show proxy`): the interface answers solicitations for dst. */
  proxyNd?: { ifname: string; dst: string }[];
  /** Tun only. */
  decap?: DecapStatus;
}

/**
 * The interface to configure: --dev when given (it must exist), else the interface of the
 * default route (IPv4 first), else the only interface besides lo.
 */
export function resolveDev(requested: string | undefined, links: readonly LinkState[], routes: readonly DefaultRoute[]): string {
  if (requested !== undefined) {
    if (!isValidIfname(requested)) throw new ConfigError(`${JSON.stringify(requested)} is not an interface name`, { field: '--dev' });
    if (!links.some((l) => l.ifname === requested)) throw new InterfaceNotFoundError(requested);
    return requested;
  }
  const byRoute = [...routes].sort((a, b) => a.family - b.family).find((r) => r.dev && links.some((l) => l.ifname === r.dev));
  if (byRoute?.dev) return byRoute.dev;
  const others = links.filter((l) => l.ifname !== 'lo');
  if (others.length === 1) return others[0]!.ifname;
  throw new ConfigError(
    `no default route, and ${others.length} interfaces besides lo (${others.map((l) => l.ifname).join(', ') || 'none'}): name the one with --dev`,
    { field: '--dev' },
  );
}

// ---- sysctls ----------------------------------------------------------------------------------

export type SysctlReason = 'arp' | 'rp_filter';

export interface SysctlWrite {
  key: string;
  value: number;
  reason: SysctlReason;
}

export function confKey(dev: string, name: string): string {
  return `net/ipv4/conf/${dev}/${name}`;
}

/** `sysctl -w` text for a key (slashes kept when an interface name holds a dot). */
export function sysctlCommand(key: string, value: number): string {
  const name = key.split('/').slice(3, 4)[0]?.includes('.') ? key : key.replace(/\//g, '.');
  return `sysctl -w ${name}=${value}`;
}

/** arp_ignore values under which the VIP on lo is never answered for on another interface:
 *  1 (target must be on the incoming interface), 2 (and in the sender's subnet), 8 (never).
 *  0 answers for any local address; 3 answers for scope global ones; 4-7 act as 0. */
export const ARP_IGNORE_OK: ReadonlySet<number> = new Set([1, 2, 8]);
/** arp_announce 2: always the best local address of the outgoing interface as ARP source. */
export const ARP_ANNOUNCE_OK = 2;
/** rp_filter 0 (off) or 2 (loose): 1 (strict) drops decapsulated packets whose route back to
 *  the client leaves by another interface. */
export const RP_FILTER_OK: ReadonlySet<number> = new Set([0, 2]);

/** The kernel uses max(all, dev) for arp_ignore, arp_announce and rp_filter. */
export function effective(o: Observed, name: string, ifname = o.dev): { value: number; all: number; dev: number } {
  const all = o.sysctl[confKey('all', name)] ?? 0;
  const dev = o.sysctl[confKey(ifname, name)] ?? 0;
  return { value: Math.max(all, dev), all, dev };
}

/** The interfaces that answer ARP at all (not lo, not NOARP), --dev first: any of them can
 *  claim the VIP on lo for its own network (a second NIC as much as the first). */
export function arpInterfaces(o: Observed): string[] {
  const others = o.links.filter((l) => l.ifname !== 'lo' && l.ifname !== o.dev && !l.noarp).map((l) => l.ifname);
  return [o.dev, ...others];
}

export function hasIpv4(vips: readonly Vip[]): boolean {
  return vips.some((v) => v.addr.family === 4);
}

/**
 * The sysctl writes that make `o` right for `mode` and `vips` ([] when nothing is needed).
 * arp_ignore: `all` to 1 unless already one of 1, 2, 8; the device to 1 when its value would
 * still win with a wrong one. arp_announce: `all` to 2 (the maximum, so it wins). rp_filter
 * (Tun): the device to 2 when strict is in effect (2 is larger than 1, so it wins over `all`).
 */
export function plannedSysctls(o: Observed, mode: Mode, vips: readonly Vip[]): SysctlWrite[] {
  if (!hasIpv4(vips)) return [];
  const out: SysctlWrite[] = [];
  const ign = effective(o, 'arp_ignore');
  if (!ARP_IGNORE_OK.has(ign.all)) out.push({ key: confKey('all', 'arp_ignore'), value: 1, reason: 'arp' });
  // Every interface whose own value would still win with a bad one (3..7 over all=1).
  for (const ifname of arpInterfaces(o)) {
    const own = o.sysctl[confKey(ifname, 'arp_ignore')] ?? 0;
    if (own !== 0 && !ARP_IGNORE_OK.has(own)) out.push({ key: confKey(ifname, 'arp_ignore'), value: 1, reason: 'arp' });
  }
  const ann = effective(o, 'arp_announce');
  if (ann.all !== ARP_ANNOUNCE_OK) out.push({ key: confKey('all', 'arp_announce'), value: ARP_ANNOUNCE_OK, reason: 'arp' });
  if (mode === 'tun') {
    const rp = effective(o, 'rp_filter');
    if (!RP_FILTER_OK.has(rp.value)) out.push({ key: confKey(o.dev, 'rp_filter'), value: 2, reason: 'rp_filter' });
  }
  return out;
}

// ---- check ------------------------------------------------------------------------------------

export type CheckStatus = 'ok' | 'wrong' | 'advice';

export interface CheckItem {
  /** Stable identifier: 'lo-up', 'vip:ADDR', 'arp_ignore', 'arp_announce', 'rp_filter',
   *  'decap', 'decap-vip:ADDR', 'mss:4', 'mss:6'. */
  id: string;
  status: CheckStatus;
  message: string;
  /** Commands that fix it (wrong) or follow the advice, in order. */
  fix: string[];
  /** Another way to the same end, instead of `fix`. */
  alternatives?: string[];
}

function setupCommand(mode: Mode, vips: readonly Vip[], dev: string): string {
  return `lvs-xdp realserver setup --mode ${mode} ${vips.map((v) => `--vip ${v.text}`).join(' ')} --dev ${dev}`;
}

function vipItem(o: Observed, v: Vip): CheckItem {
  const same = o.addrs.filter((a) => a.local === v.text && a.family === v.addr.family);
  const onLo = same.filter((a) => a.ifname === 'lo');
  const host = onLo.find((a) => a.prefixlen === v.prefix);
  const wider = onLo.filter((a) => a.prefixlen !== v.prefix);
  const elsewhere = same.filter((a) => a.ifname !== 'lo');
  const fix: string[] = [];
  const problems: string[] = [];
  for (const a of elsewhere) {
    problems.push(`also on ${a.ifname} as /${a.prefixlen} (answered for there)`);
    fix.push(`ip addr del ${a.local}/${a.prefixlen} dev ${a.ifname}`);
  }
  for (const a of wider) {
    problems.push(`on lo as /${a.prefixlen} (makes the whole prefix local)`);
    fix.push(`ip addr del ${a.local}/${a.prefixlen} dev lo`);
  }
  if (!host) {
    problems.push(`not on lo as /${v.prefix}`);
    // IPv6 switched off on lo refuses the address: say so first.
    if (v.addr.family === 6 && o.sysctl['net/ipv6/conf/lo/disable_ipv6'] === 1) {
      problems.push('IPv6 is disabled on lo');
      fix.push('sysctl -w net.ipv6.conf.lo.disable_ipv6=0');
    }
    fix.push(`ip addr add ${v.text}/${v.prefix} dev lo`);
  }
  return problems.length
    ? { id: `vip:${v.text}`, status: 'wrong', message: `VIP ${v.text}: ${problems.join('; ')}`, fix }
    : { id: `vip:${v.text}`, status: 'ok', message: `VIP ${v.text} on lo as /${v.prefix}`, fix: [] };
}

/** MSS that leaves room for the director's outer header on a path of `mtu` bytes. */
export function tunnelMss(mtu: number, vipFamily: Family, outerFamily: Family): number {
  const outer = outerFamily === 4 ? DECAP_ABI.LVS_DECAP_OUTER4_LEN : DECAP_ABI.LVS_DECAP_OUTER6_LEN;
  const inner = vipFamily === 4 ? 20 : 40;
  return mtu - outer - inner - 20;
}

function mssItems(o: Observed, vips: readonly Vip[]): CheckItem[] {
  const mtu = o.links.find((l) => l.ifname === o.dev)?.mtu ?? 1500;
  // Tunnels reach this realserver at one of its own addresses: the outer family is theirs.
  const own = o.addrs.filter((a) => a.ifname === o.dev && a.scope === 'global');
  // Both families (or none known): assume the costlier IPv6 outer header.
  const outer: Family = own.length && own.every((a) => a.family === 4) ? 4 : 6;
  const items: CheckItem[] = [];
  for (const fam of [4, 6] as Family[]) {
    if (!vips.some((v) => v.addr.family === fam)) continue;
    const mss = tunnelMss(mtu, fam, outer);
    const cost = outer === 4 ? DECAP_ABI.LVS_DECAP_OUTER4_LEN : DECAP_ABI.LVS_DECAP_OUTER6_LEN;
    const why =
      `the director's outer IPv${outer} header costs ${cost} bytes: with MTU ${mtu} on ${o.dev}, TCP to IPv${fam} VIPs ` +
      `needs MSS <= ${mtu} - ${cost} - ${fam === 4 ? 20 : 40} - 20 = ${mss}`;
    const route = o.defaultRoutes.find((r) => r.family === fam);
    if (route?.advmss !== undefined && route.advmss <= mss) {
      items.push({ id: `mss:${fam}`, status: 'ok', message: `${why}; the IPv${fam} default route advertises ${route.advmss}`, fix: [] });
      continue;
    }
    const ipf = fam === 6 ? 'ip -6' : 'ip';
    const fix: string[] = route
      ? [`${ipf} route change default${route.gateway ? ` via ${route.gateway}` : ''}${route.dev ? ` dev ${route.dev}` : ''} advmss ${mss}`]
      : [`${ipf} route change ROUTE-TO-CLIENTS advmss ${mss}`];
    items.push({
      id: `mss:${fam}`,
      status: 'advice',
      message: `${why} (otherwise clients rely on the director's ICMP too-big answers)`,
      fix,
      alternatives: [`${fam === 6 ? 'ip6tables' : 'iptables'} -t mangle -A OUTPUT -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss ${mss}`],
    });
  }
  return items;
}

function decapItems(o: Observed, mode: Mode, vips: readonly Vip[]): CheckItem[] {
  const d = o.decap;
  const setup = setupCommand(mode, vips, o.dev);
  const items: CheckItem[] = [];
  if (d?.pinned && d.linkIfname === o.dev && d.linkProgId === d.devProgId) {
    items.push({ id: 'decap', status: 'ok', message: `decapsulation program attached to ${o.dev} (program id ${d.devProgId})`, fix: [] });
  } else if (d?.pinned && d.linkIfname && d.linkIfname !== o.dev) {
    items.push({
      id: 'decap',
      status: 'wrong',
      message: `the decapsulation program is attached to ${d.linkIfname}, not ${o.dev}`,
      fix: ['lvs-xdp realserver teardown', setup],
    });
  } else if (d && d.devProgId !== 0) {
    items.push({
      id: 'decap',
      status: 'wrong',
      message: `another XDP program (id ${d.devProgId}${d.devProgName ? `, ${d.devProgName}` : ''}) is attached to ${o.dev}: tunnelled packets are not decapsulated`,
      fix: [`ip link set dev ${o.dev} xdp off`, setup],
    });
  } else {
    items.push({ id: 'decap', status: 'wrong', message: `no decapsulation program on ${o.dev}: tunnelled packets reach nothing`, fix: [setup] });
  }
  for (const v of vips) {
    const st = d?.vips?.get(v.text);
    items.push(
      st
        ? { id: `decap-vip:${v.text}`, status: 'ok', message: `VIP ${v.text} in the decapsulation map (${st.packets} packets, ${st.bytes} bytes decapsulated)`, fix: [] }
        : { id: `decap-vip:${v.text}`, status: 'wrong', message: `VIP ${v.text} not in the decapsulation map: its tunnelled packets are passed undecapsulated`, fix: [setup] },
    );
  }
  return items;
}

type Eff = { value: number; all: number; dev: number };
const valsOn = (ifname: string, e: Eff) => `effective ${e.value} (all ${e.all}, ${ifname} ${e.dev})`;

/**
 * ARP and rp_filter, on every interface that answers ARP (the kernel takes max(all, device) for
 * each): `arp_ignore` / `arp_announce` keep their ids for --dev; any other interface that would
 * answer for the VIP or use it as an ARP source gets an item of its own ('arp_ignore:IF'), since
 * a second NIC claims the VIP on lo for its network as readily as the first.
 */
function arpItems(o: Observed, mode: Mode, vips: readonly Vip[]): CheckItem[] {
  const items: CheckItem[] = [];
  const writes = plannedSysctls(o, mode, vips);
  const fixOn = (name: string, ifname: string) =>
    writes.filter((w) => w.key === confKey('all', name) || w.key === confKey(ifname, name)).map((w) => sysctlCommand(w.key, w.value));
  const others = arpInterfaces(o).slice(1);
  const badIgnore = others.filter((i) => !ARP_IGNORE_OK.has(effective(o, 'arp_ignore', i).value));
  const badAnnounce = others.filter((i) => effective(o, 'arp_announce', i).value !== ARP_ANNOUNCE_OK);
  const alsoOk = (bad: string[]) => {
    const good = others.filter((i) => !bad.includes(i));
    return good.length ? ` (nor on ${good.join(', ')})` : '';
  };
  const ign = effective(o, 'arp_ignore');
  const ann = effective(o, 'arp_announce');
  items.push(
    ARP_IGNORE_OK.has(ign.value)
      ? { id: 'arp_ignore', status: 'ok', message: `arp_ignore ${valsOn(o.dev, ign)}: ARP for the VIP is not answered on ${o.dev}${alsoOk(badIgnore)}`, fix: [] }
      : { id: 'arp_ignore', status: 'wrong', message: `arp_ignore ${valsOn(o.dev, ign)}: the realserver answers ARP for the VIP`, fix: fixOn('arp_ignore', o.dev) },
  );
  for (const i of badIgnore) {
    items.push({
      id: `arp_ignore:${i}`, status: 'wrong',
      message: `arp_ignore on ${i} ${valsOn(i, effective(o, 'arp_ignore', i))}: ${i} answers ARP for the VIP, so hosts on ${i}'s network send clients' packets straight here, past the director`,
      fix: fixOn('arp_ignore', i),
    });
  }
  items.push(
    ann.value === ARP_ANNOUNCE_OK
      ? { id: 'arp_announce', status: 'ok', message: `arp_announce ${valsOn(o.dev, ann)}: the VIP is never an ARP source${alsoOk(badAnnounce)}`, fix: [] }
      : { id: 'arp_announce', status: 'wrong', message: `arp_announce ${valsOn(o.dev, ann)}: ARP requests may carry the VIP as source`, fix: fixOn('arp_announce', o.dev) },
  );
  for (const i of badAnnounce) {
    items.push({
      id: `arp_announce:${i}`, status: 'wrong',
      message: `arp_announce on ${i} ${valsOn(i, effective(o, 'arp_announce', i))}: ARP requests sent on ${i} may carry the VIP as source, and ${i}'s neighbours then send the VIP's traffic here`,
      fix: fixOn('arp_announce', i),
    });
  }
  const rp = effective(o, 'rp_filter');
  if (mode === 'tun') {
    items.push(
      RP_FILTER_OK.has(rp.value)
        ? { id: 'rp_filter', status: 'ok', message: `rp_filter ${valsOn(o.dev, rp)}: decapsulated packets from any client are accepted`, fix: [] }
        : {
            id: 'rp_filter',
            status: 'wrong',
            message: `rp_filter ${valsOn(o.dev, rp)} (strict): decapsulated packets are dropped when the route back to the client leaves by another interface`,
            fix: fixOn('rp_filter', o.dev),
          },
    );
  } else items.push(...drRpFilterItems(o));
  return items;
}

/**
 * LVS-DR and rp_filter: clients' packets arrive on --dev with the client's source address, and
 * strict filtering (1) drops them unless the route back to the client leaves by --dev. The
 * route back to "any client" is the IPv4 default route; setup leaves rp_filter alone for DR, so
 * the fix is named here: 2 (loose) on the device wins over all=1.
 */
function drRpFilterItems(o: Observed): CheckItem[] {
  const back = o.defaultRoutes.find((r) => r.family === 4)?.dev;
  const fixOn = (i: string) => [sysctlCommand(confKey(i, 'rp_filter'), 2)];
  const items: CheckItem[] = [];
  const rp = effective(o, 'rp_filter');
  if (RP_FILTER_OK.has(rp.value)) {
    items.push({ id: 'rp_filter', status: 'ok', message: `rp_filter ${valsOn(o.dev, rp)}: DR packets from any client are accepted on ${o.dev}`, fix: [] });
  } else if (back === o.dev) {
    items.push({ id: 'rp_filter', status: 'ok', message: `rp_filter ${valsOn(o.dev, rp)} (strict), and the default route leaves by ${o.dev}: DR packets from clients it covers are accepted`, fix: [] });
  } else if (back) {
    items.push({
      id: 'rp_filter', status: 'wrong',
      message: `rp_filter ${valsOn(o.dev, rp)} (strict): DR packets arrive on ${o.dev} but the route back to clients (the default route) leaves by ${back}, so the kernel drops them`,
      fix: fixOn(o.dev),
    });
  } else {
    items.push({
      id: 'rp_filter', status: 'advice',
      message: `rp_filter ${valsOn(o.dev, rp)} (strict) and no IPv4 default route: DR packets from a client whose route back does not leave by ${o.dev} are dropped`,
      fix: fixOn(o.dev),
    });
  }
  // Other interfaces: DR traffic may arrive there too (the --dev given is only one of them).
  for (const i of arpInterfaces(o).slice(1)) {
    const e = effective(o, 'rp_filter', i);
    if (RP_FILTER_OK.has(e.value) || back === i) continue;
    items.push({
      id: `rp_filter:${i}`, status: 'advice',
      message: `rp_filter on ${i} ${valsOn(i, e)} (strict), the default route leaves by ${back ?? 'no interface'}: if DR traffic also arrives on ${i}, it is dropped`,
      fix: fixOn(i),
    });
  }
  return items;
}

/**
 * IPv6 has no arp_ignore: Linux answers a neighbour solicitation only for addresses of the
 * interface it arrives on, so the VIP on lo is never claimed, unless a proxy NDP entry for it
 * makes an interface answer. The address must also be usable: not tentative or dadfailed (lo
 * runs no DAD, but a VIP added elsewhere first and moved can be either). IPv6 has no rp_filter.
 */
function ndItem(o: Observed, v: Vip): CheckItem {
  const id = `nd:${v.text}`;
  const problems: string[] = [];
  const fix: string[] = [];
  for (const a of o.addrs) {
    if (a.local !== v.text || a.family !== 6 || a.ifname !== 'lo') continue;
    if (a.dadfailed || a.tentative) {
      problems.push(`on lo but ${a.dadfailed ? 'dadfailed' : 'tentative'} (not usable)`);
      fix.push(`ip -6 addr del ${v.text}/${a.prefixlen} dev lo`, `ip -6 addr add ${v.text}/${v.prefix} dev lo nodad`);
    }
  }
  for (const p of o.proxyNd ?? []) {
    if (p.dst !== v.text) continue;
    problems.push(`proxy NDP entry on ${p.ifname}: ${p.ifname} answers neighbour solicitations for the VIP`);
    fix.push(`ip -6 neigh del proxy ${v.text} dev ${p.ifname}`);
  }
  return problems.length
    ? { id, status: 'wrong', message: `VIP ${v.text} (IPv6): ${problems.join('; ')}`, fix }
    : {
        id, status: 'ok', fix: [],
        message: `VIP ${v.text} (IPv6): solicitations are answered only for addresses of the interface they arrive on; checked: usable (not tentative or dadfailed), no proxy NDP entry for it on any interface`,
      };
}

/** Every requirement of `mode` for `vips`, in a stable order. */
export function checkItems(o: Observed, mode: Mode, vips: readonly Vip[]): CheckItem[] {
  const items: CheckItem[] = [];
  const lo = o.links.find((l) => l.ifname === 'lo');
  items.push(
    lo?.up
      ? { id: 'lo-up', status: 'ok', message: 'lo is up', fix: [] }
      : { id: 'lo-up', status: 'wrong', message: 'lo is down: addresses on it are not local', fix: ['ip link set dev lo up'] },
  );
  for (const v of vips) items.push(vipItem(o, v));
  if (hasIpv4(vips)) items.push(...arpItems(o, mode, vips));
  for (const v of vips) if (v.addr.family === 6) items.push(ndItem(o, v));
  if (mode === 'tun') {
    items.push(...decapItems(o, mode, vips));
    items.push(...mssItems(o, vips));
  }
  return items;
}

export function formatCheck(items: readonly CheckItem[]): string {
  const lines: string[] = [];
  for (const i of items) {
    lines.push(`${i.status.padEnd(6)} ${i.message}`);
    for (const f of i.fix) lines.push(`       ${i.status === 'advice' ? 'do' : 'fix'}: ${f}`);
    for (const f of i.alternatives ?? []) lines.push(`       or: ${f}`);
  }
  return lines.join('\n');
}
