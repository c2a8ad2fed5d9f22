/**
 * Accepted destination MACs (lvs_l2_addrs, and lvs_l2_ifs for the check): which frames are the director's. An attached
 * interface accepts its own MAC, the MACs of the devices stacked on it (macvlan and VRRP vmac
 * uppers, VLANs, the bridge or bond it is a port of, and what is stacked on those) and, when it
 * is a bond, its slaves' MACs, under the bond's ifindex and each slave's (with native XDP on a
 * bond the program sees the slave as the ingress interface). Every entry carries the attached
 * interface's own MAC: the source of what is sent back out of it. Pure: the links come from
 * `ip -j -d link` (src/director/neigh.ts).
 *
 * The data plane checks an interface's first LVS_L2_IF_MACS MACs inline (its lvs_l2_ifs entry,
 * ingress ifindex below LVS_L2_IF_SLOTS) and looks the others up in lvs_l2_addrs, which holds
 * every pair (bpf/lvs_abi.h). An ARRAY value is rewritten in place, so a frame racing the write
 * may read a mix of the old and the new entry: placeSlots keeps every MAC that stays accepted in
 * its slot, so only frames to a MAC being added or removed can see that mix (and be passed).
 */
import { ABI } from '../abi/generated.js';
import { compareText } from '../model/order.js';
import { decode, encode, L2_ADDR, L2_IF, L2_KEY } from '../abi/layout.js';

export type AcceptKind = 'own' | 'upper' | 'vrrp' | 'lower';
export interface AcceptedMac {
  /** Ingress interface the frame arrives on (ctx->ingress_ifindex). */
  ifindex: number;
  /** Destination MAC accepted there (lower case, colon-separated). */
  mac: string;
  /** Source MAC of frames sent back out (XDP_TX): the attached interface's own. */
  egress: string;
  kind: AcceptKind;
  /** The device the MAC belongs to (for listings; not in the map). */
  dev?: string;
}

/** One link as `ip -j -d link show` describes it (the fields used here). */
export interface LinkDesc {
  ifindex: number;
  ifname: string;
  address?: string;
  /** Lower device (vlan, macvlan) or veth peer, by name, when in this namespace. */
  link?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
}

const KIND_CODE: Record<AcceptKind, number> = { own: ABI.LVS_L2_OWN, upper: ABI.LVS_L2_UPPER, vrrp: ABI.LVS_L2_VRRP, lower: ABI.LVS_L2_LOWER };
const KIND_NAME = Object.fromEntries(Object.entries(KIND_CODE).map(([k, v]) => [v, k])) as Record<number, AcceptKind>;
/** Devices stacked on a lower that receive frames through it under a MAC of their own. */
const STACKED = new Set(['macvlan', 'macvtap', 'vlan', 'ipvlan', 'ipvtap']);
/** keepalived use_vmac: 00:00:5e:00:01:VRID (VRRP for IPv4), 00:00:5e:00:02:VRID (IPv6). */
const VRRP = /^00:00:5e:00:0[12]:[0-9a-f]{2}$/;

/** A unicast MAC that can be a destination: not a group (broadcast, multicast) nor all zero. */
export function isUnicastMac(mac: string): boolean {
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}

function macBuf(m: string): Uint8Array {
  return Uint8Array.from(m.split(':').map((x) => parseInt(x, 16)));
}

function macStr(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Why a stacked device's MAC is accepted: a VRRP virtual MAC, or any other upper. */
function upperKind(mac: string): AcceptKind {
  return VRRP.test(mac) ? 'vrrp' : 'upper';
}

/**
 * The accepted set of the attached interfaces (by name), from the links of this namespace.
 * An attached interface missing from `links` contributes nothing (it is gone).
 */
export function acceptedSet(links: readonly LinkDesc[], attached: readonly string[]): AcceptedMac[] {
  const byName = new Map(links.map((l) => [l.ifname, l]));
  const out = new Map<string, AcceptedMac>();
  const add = (ifindex: number, dev: LinkDesc, kind: AcceptKind, egress: string): void => {
    const mac = dev.address?.toLowerCase();
    if (!mac || !isUnicastMac(mac)) return;
    const key = `${ifindex}/${mac}`;
    if (!out.has(key)) out.set(key, { ifindex, mac, egress, kind, dev: dev.ifname });
  };
  for (const name of attached) {
    const x = byName.get(name);
    const egress = x?.address?.toLowerCase();
    if (!x || !egress || !isUnicastMac(egress)) continue;
    // Devices above x, transitively: its master (bridge, bond), and what is stacked on x or on them.
    const uppers: LinkDesc[] = [];
    const seen = new Set([x.ifname]);
    const queue = [x];
    while (queue.length) {
      const d = queue.shift()!;
      const above = links.filter((u) => (u.link === d.ifname && STACKED.has(u.linkinfo?.info_kind ?? '')) || d.master === u.ifname);
      for (const u of above) {
        if (seen.has(u.ifname)) continue;
        seen.add(u.ifname);
        uppers.push(u);
        queue.push(u);
      }
    }
    // A bond's slaves: their own MACs (balance-alb / -tlb answer ARP with them) and their
    // ifindexes (native XDP on a bond runs on the slave's receive queue).
    const slaves = x.linkinfo?.info_kind === 'bond' ? links.filter((l) => l.master === x.ifname) : [];
    for (const ifindex of [x.ifindex, ...slaves.map((s) => s.ifindex)]) {
      add(ifindex, x, 'own', egress);
      for (const u of uppers) add(ifindex, u, upperKind(u.address?.toLowerCase() ?? ''), egress);
      for (const s of slaves) add(ifindex, s, 'lower', egress);
    }
  }
  return [...out.values()].sort((a, b) => a.ifindex - b.ifindex || compareText(a.mac, b.mac));
}

export function encodeL2Key(ifindex: number, mac: string): Buffer {
  return encode(L2_KEY, { ifindex, mac: macBuf(mac) });
}

export function encodeL2Addr(a: Pick<AcceptedMac, 'egress' | 'kind'>): Buffer {
  return encode(L2_ADDR, { egress: macBuf(a.egress), kind: KIND_CODE[a.kind] });
}

/** An lvs_l2_addrs entry as read back from the map. */
export function decodeAccepted(key: Uint8Array, value: Uint8Array): AcceptedMac {
  const k = decode(L2_KEY, key);
  const v = decode(L2_ADDR, value);
  return { ifindex: k.ifindex as number, mac: macStr(k.mac as Uint8Array), egress: macStr(v.egress as Uint8Array), kind: KIND_NAME[v.kind as number] ?? 'upper' };
}

/** Same entry in the map: same key and value (`dev` is not in the map). */
export function sameAccepted(a: AcceptedMac, b: AcceptedMac): boolean {
  return a.ifindex === b.ifindex && a.mac === b.mac && a.egress === b.egress && a.kind === b.kind;
}

/** An lvs_l2_ifs entry: accepted MACs by slot ('' = empty), the egress MAC, more in lvs_l2_addrs. */
export interface AcceptedIf {
  ifindex: number;
  slots: string[];
  egress: string;
  more: boolean;
}

/** Fills an empty slot below `count`: a group MAC, which the data plane refuses before comparing. */
const EMPTY_SLOT = 'ff:ff:ff:ff:ff:ff';

/**
 * Slot placement of one interface's accepted MACs: the attached interface's own first (slot 0),
 * a MAC accepted before keeps its slot, new ones take free slots in order; what does not fit is
 * looked up in lvs_l2_addrs (`more`).
 */
export function placeSlots(prev: readonly string[], list: readonly AcceptedMac[]): { slots: string[]; more: boolean } {
  const n = ABI.LVS_L2_IF_MACS;
  const slots: string[] = Array.from({ length: n }, () => '');
  const own = list.filter((a) => a.kind === 'own').map((a) => a.mac);
  const rest = list.filter((a) => a.kind !== 'own').map((a) => a.mac);
  let first = 0;
  if (own.length) slots[first++] = own.shift()!;
  const others = [...own, ...rest];
  const wanted = new Set(others);
  for (let i = first; i < n; i++) if (prev[i] && wanted.has(prev[i]!) && !slots.includes(prev[i]!)) slots[i] = prev[i]!;
  const left = others.filter((m) => !slots.includes(m));
  for (let i = first; i < n && left.length; i++) if (!slots[i]) slots[i] = left.shift()!;
  return { slots, more: left.length > 0 };
}

/**
 * The lvs_l2_ifs entries that take `desired` from the entries held now (`held`, by ifindex):
 * changed ones, and an empty entry for an interface that accepts nothing any more. Every MAC of
 * an interface has the same egress MAC (its attached interface's); a list that disagrees is a bug.
 */
export function ifEntries(held: ReadonlyMap<number, AcceptedIf>, desired: readonly AcceptedMac[]): AcceptedIf[] {
  const byIf = new Map<number, AcceptedMac[]>();
  for (const a of desired) if (a.ifindex < ABI.LVS_L2_IF_SLOTS) byIf.set(a.ifindex, [...(byIf.get(a.ifindex) ?? []), a]);
  const out: AcceptedIf[] = [];
  for (const [ifindex, list] of byIf) {
    const egress = (list.find((a) => a.kind === 'own') ?? list[0]!).egress;
    const other = list.find((a) => a.egress !== egress);
    if (other) throw new Error(`internal: ifindex ${ifindex} accepts ${other.mac} with egress ${other.egress}, its others with ${egress}`);
    const prev = held.get(ifindex);
    const e: AcceptedIf = { ifindex, ...placeSlots(prev?.slots ?? [], list), egress };
    if (!prev || !sameIf(prev, e)) out.push(e);
  }
  for (const [ifindex, prev] of held) if (!byIf.has(ifindex) && (prev.slots.some(Boolean) || prev.more)) out.push({ ifindex, slots: [], egress: '00:00:00:00:00:00', more: false });
  return out.sort((a, b) => a.ifindex - b.ifindex);
}

function sameIf(a: AcceptedIf, b: AcceptedIf): boolean {
  const n = ABI.LVS_L2_IF_MACS;
  return a.egress === b.egress && a.more === b.more && Array.from({ length: n }).every((_, i) => (a.slots[i] ?? '') === (b.slots[i] ?? ''));
}

export function encodeL2If(e: AcceptedIf): Buffer {
  const n = ABI.LVS_L2_IF_MACS;
  let count = 0;
  for (let i = 0; i < n; i++) if (e.slots[i]) count = i + 1;
  const macs = Buffer.alloc(8 * n);
  for (let i = 0; i < count; i++) macs.set(macBuf(e.slots[i] || EMPTY_SLOT), 8 * i);
  return encode(L2_IF, { macs, egress: macBuf(e.egress), count, more: e.more ? 1 : 0 });
}

export function decodeL2If(ifindex: number, value: Uint8Array): AcceptedIf {
  const v = decode(L2_IF, value);
  const macs = v.macs as Uint8Array;
  const count = v.count as number;
  const slots = Array.from({ length: ABI.LVS_L2_IF_MACS }, (_, i) => {
    const m = i < count ? macStr(macs.subarray(8 * i, 8 * i + 6)) : '';
    return m === EMPTY_SLOT ? '' : m;
  });
  return { ifindex, slots, egress: macStr(v.egress as Uint8Array), more: v.more === 1 };
}
