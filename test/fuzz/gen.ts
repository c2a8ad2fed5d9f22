/**
 * Random director configurations and the frames sent to them. Addresses, ports and IP
 * identifications come from small pools so that frames meet each other's state (connections,
 * persistence groups, first fragments, ICMP errors about tracked flows); configurations include
 * what a correct control plane never writes (missing or short tables, out-of-range indexes,
 * deleted and reused realserver slots, odd states and timestamps), since the data plane must
 * still behave as specified on them.
 */
import { Rng } from './rng.js';
import { vipFilterSlot, CASE_DIRECTOR_MAC, CASE_SYNRECV_KEYS, type CaseConfig, type CaseReal, type CaseService, type FuzzCase } from './case.js';
import { TEST_RUN_IFINDEX } from '../model/types.js';
import { flowKeyHex, fragKeyHex, persistKeyHex } from '../model/keys.js';
import { internetChecksum } from '../model/emit.js';
import { ABI } from '../../src/abi/generated.js';
import { decode, FLOW_KEY } from '../../src/abi/layout.js';

const MAX_FRAME = 3500; // BPF_PROG_TEST_RUN takes up to 4096 - headroom - tailroom for XDP
const TX_PORT = 1; // lo: a device the devmap accepts
const ABSENT_PORT = 77;

function a4(s: string): Buffer {
  const b = Buffer.alloc(16);
  s.split('.').forEach((x, i) => { b[i] = Number(x); });
  return b;
}

function a6(groups: number[]): Buffer {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

const VIPS4 = [a4('10.0.0.1'), a4('10.0.0.2'), a4('10.0.0.3')];
const VIPS6 = [a6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), a6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]), a6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 3])];
const OTHER4 = [a4('10.0.0.9'), a4('192.168.1.1')];
const OTHER6 = [a6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 9])];
const CLIENTS4 = [a4('198.51.100.7'), a4('198.51.100.8'), a4('198.51.101.7'), a4('203.0.113.10')];
const CLIENTS6 = [
  a6([0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 7]), a6([0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 8]),
  a6([0x2001, 0xdb8, 0x100, 1, 0, 0, 0, 7]), a6([0x2001, 0xdb8, 0x200, 0, 0, 0, 0, 9]),
];
const CPORTS = [40000, 40001, 1024, 65535];
const IPID4 = [0x1234, 0x0001, 0xbeef];
const IPID6 = [0x12345678, 0x00000001, 0xdeadbeef];
const DIRECTOR_MAC = Buffer.from(CASE_DIRECTOR_MAC, 'hex');
/** Accepted-MAC universe: a macvlan upper's, a VRRP vmac, one accepted only on another
 *  interface, and group MACs (never forwarded, even when the map holds them). */
const UPPER_MAC = '0200000aa001';
const VRRP_MAC = '00005e000107';
const OTHER_IF_MAC = '0200000bb001';
const OTHER_IFINDEX = 7;
const BROADCAST_MAC = 'ffffffffffff';
const MULTICAST_MAC = '01005e000001';
/** Ages (s) of pre-existing entries: half-way between the whole-second thresholds (timeouts,
 *  the 1 s refresh, the 30 s fragment lifetime), some very old, some in the future. */
const AGES = [0.25, 0.5, 1.5, 5.5, 10.5, 29.5, 30.5, 59.5, 60.5, 119.5, 120.5, 299.5, 300.5, 899.5, 900.5, 3600.5, 1e7 + 0.5, -100.5];
const TIMEOUTS = [0, 1, 2, 10, 60, 120, 300, 900, 4294967295];
const DEFAULT_TIMEOUTS = [0, 60, 900, 120, 10, 300];
/** Table size of each lvs_tables slot (0..29). */
const SLOT_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 251, 1021, 7, 3, 1, 2, 5, 13, 31, 8, 4, 6, 251, 7, 3, 2, 1, 13, 5, 4093];

const ageNs = (s: number) => String(BigInt(Math.round(s * 1e6)) * 1000n);

interface Universe {
  cfg: CaseConfig;
  services: CaseService[];
}

/** The namespace an LVS-NAT campaign runs in (test/packet/fuzz-nat.test.ts): the FIB toward the
 *  clients it has (resolved next hops; the other clients have none) and the ifindex of the
 *  interface that FIB sends them out of. Without it no configuration has the NAT flag: a reply's
 *  fate would depend on the host's routes. */
export interface NatEnv { fib: NonNullable<CaseConfig['fib']>; egress: number }

function prefixMask(bits: number, bytes: number): Buffer {
  const m = Buffer.alloc(16, 0xff);
  for (let i = 0; i < bytes; i++) {
    const n = Math.max(0, Math.min(8, bits - i * 8));
    m[i] = (0xff << (8 - n)) & 0xff;
  }
  return m;
}

// ---- configurations ---------------------------------------------------------------------------

export function genConfig(rng: Rng, nat?: NatEnv): CaseConfig {
  // Each knob combination is its own loaded program: mostly all on, one off, or all off.
  const on = { ipv6: true, tun: true, icmp: true, frag: true };
  const knobs = rng.weighted([
    [60, on], [8, { ...on, ipv6: false }], [8, { ...on, tun: false }], [8, { ...on, icmp: false }], [8, { ...on, frag: false }],
    [4, { ipv6: false, tun: false, icmp: false, frag: false }],
    [4, { ipv6: rng.chance(0.5), tun: rng.chance(0.5), icmp: rng.chance(0.5), frag: rng.chance(0.5) }],
  ] as const);
  const settings = {
    tunSrc4: rng.chance(0.8) ? '0a000101' : rng.bytes(4).toString('hex'),
    tunSrc6: rng.chance(0.8) ? a6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 1]).toString('hex') : rng.bytes(16).toString('hex'),
    seed: rng.u32(),
    timeouts: rng.chance(0.4) ? DEFAULT_TIMEOUTS.slice() : Array.from({ length: 6 }, () => rng.pick(TIMEOUTS)),
    tunMtu: rng.weighted([[5, 1500], [1, 0], [1, 1280], [1, 576], [1, 9000], [0.5, 88], [0.5, 108], [0.3, 89], [0.3, 109], [1, 200], [0.5, rng.int(65536)]] as const),
    tunTtl: rng.weighted([[4, 64], [1, 0], [1, 1], [1, 255], [1, rng.int(256)]] as const),
    flags: (rng.chance(0.3) ? ABI.LVS_CFG_F_EXPIRE_QUIESCENT : 0) | (nat && rng.chance(0.9) ? ABI.LVS_CFG_F_NAT : 0) |
      (rng.chance(0.5) ? ABI.LVS_CFG_F_SYNC : 0), // connection sync events
    // sync refresh period: 1 s crosses on most refreshes, 30 / 600 s only past a boundary
    syncRefreshS: rng.weighted([[3, 0], [3, 1], [2, 2], [3, 30], [1, 600], [1, rng.u32()]] as const),
  };

  // realservers
  const reals: CaseReal[] = [];
  const used = new Set<number>();
  const nReals = rng.range(2, 14);
  for (let i = 0; i < nReals; i++) {
    let index = rng.chance(0.7) ? rng.int(12) : rng.int(64);
    while (used.has(index)) index = (index + 1) % 64;
    used.add(index);
    const family = rng.chance(0.5) ? 4 : 6;
    reals.push({
      index,
      addr: family === 4 ? a4(`192.168.${rng.int(3)}.${rng.range(1, 254)}`).toString('hex') : a6([0x2001, 0xdb8, 1, 0, 0, 0, 0, rng.range(1, 0xffff)]).toString('hex'),
      mac: Buffer.from([2, 0, 0, 0, rng.int(256), rng.int(256)]).toString('hex'),
      smac: rng.chance(0.5) ? '020000000002' : rng.bytes(6).toString('hex'),
      family: rng.chance(0.97) ? family : rng.int(256),
      method: rng.weighted(nat
        ? [[25, ABI.LVS_FWD_DR], [20, ABI.LVS_FWD_TUN], [50, ABI.LVS_FWD_NAT], [5, rng.range(3, 255)]] as const
        : [[42, ABI.LVS_FWD_DR], [42, ABI.LVS_FWD_TUN], [8, ABI.LVS_FWD_NAT], [8, rng.range(3, 255)]] as const),
      flags: rng.weighted([
        [64, ABI.LVS_REAL_F_ACTIVE], [12, ABI.LVS_REAL_F_ACTIVE | ABI.LVS_REAL_F_QUIESCED], [8, 0], [8, ABI.LVS_REAL_F_GONE],
        [2, ABI.LVS_REAL_F_GONE | ABI.LVS_REAL_F_QUIESCED], [2, ABI.LVS_REAL_F_ACTIVE | ABI.LVS_REAL_F_GONE], [6, rng.int(0x10000)],
      ] as const),
      gen: rng.int(4),
      ifindex: rng.weighted([[85, 0], [8, TX_PORT], [7, ABSENT_PORT]] as const),
      svcId: rng.int(18),
    });
  }
  for (const r of reals) {
    if (r.method !== ABI.LVS_FWD_NAT) continue;
    // LVS-NAT: realserver port (0: the client's), the service side of its replies
    r.port = rng.weighted([[4, 8080], [2, 0], [2, 80], [1, 53], [1, rng.int(65536)]] as const);
    r.vport = rng.weighted([[3, 80], [2, 53], [2, 0], [1, 443], [1, rng.int(65536)]] as const);
    r.vip = rng.pick(r.family === 6 ? VIPS6 : VIPS4).toString('hex');
  }
  const realIdx = reals.map((r) => r.index);

  // services and their tables
  const services: CaseService[] = [];
  const tables: { slot: number; entries: number[] }[] = [];
  const cursors: { id: number; value: number }[] = [];
  const freeSlots = Array.from({ length: 30 }, (_, i) => i);
  const ids = Array.from({ length: 16 }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const nSvc = rng.range(1, 6);
  for (let i = 0; i < nSvc; i++) {
    const family = rng.chance(0.5) ? 4 : 6;
    const id = rng.weighted([[90, ids[i]!], [5, rng.range(16, 20)], [5, services.length ? rng.pick(services).id : 0]] as const);
    // Each lvs_tables slot has a fixed size across cases (the kernel side then rewrites tables in
    // place); slots 30 and 31 never hold one.
    const tableSlot = rng.weighted([[92, freeSlots.splice(rng.int(freeSlots.length), 1)[0] ?? 0], [5, rng.pick([30, 31])], [3, rng.range(32, 40)]] as const);
    const size = SLOT_SIZES[tableSlot] ?? 7;
    if (tableSlot < 30) {
      // mostly realservers that can carry this family (DR keeps the family, Tun may change it)
      const fit = reals.filter((r) => r.method === ABI.LVS_FWD_TUN || r.family === family).map((r) => r.index);
      const entries = Array.from({ length: size }, () => rng.weighted([
        [60, fit.length ? rng.pick(fit) : 0], [25, realIdx.length ? rng.pick(realIdx) : 0], [5, ABI.LVS_REAL_NONE], [5, rng.int(64)], [2, rng.range(64, 100)], [3, rng.u32()],
      ] as const));
      tables.push({ slot: tableSlot, entries });
    }
    const flags = rng.chance(0.02) ? rng.int(0x10000)
      : (rng.chance(0.15) ? ABI.LVS_SVC_F_OPS : 0) | (rng.chance(0.3) ? ABI.LVS_SVC_F_PERSIST : 0) | (rng.chance(0.2) ? ABI.LVS_SVC_F_ROTATE : 0) |
        (rng.chance(0.12) ? ABI.LVS_SVC_F_GONE : 0) | // tombstone of a deleted service
        // least-connection family (kind in bits 8..11: mostly lc..ovf, sometimes no or an unknown kind) and thresholds
        (rng.chance(0.3) ? ABI.LVS_SVC_F_LC | (rng.weighted([[90, rng.range(ABI.LVS_LC_LC, ABI.LVS_LC_OVF)], [5, 0], [5, rng.range(8, 15)]] as const) << ABI.LVS_SVC_LC_SHIFT) : 0) |
        (rng.chance(0.25) ? ABI.LVS_SVC_F_THRESH : 0) |
        (rng.chance(0.2) ? ABI.LVS_SVC_F_ALLPORTS : 0); // copied into sync events only
    const tableSize = rng.weighted([[85, size], [4, 0], [5, size + rng.range(1, 5)], [6, rng.range(1, size)]] as const);
    const bits = family === 4 ? rng.pick([32, 24, 16, 0, rng.int(33)]) : rng.pick([128, 64, 48, 0, rng.int(129)]);
    const persistMask = rng.chance(0.95) ? prefixMask(bits, family === 4 ? 4 : 16) : rng.bytes(16);
    services.push({
      addr: rng.pick(family === 4 ? VIPS4 : VIPS6).toString('hex'),
      port: rng.weighted([[3, 80], [2, 53], [1, 443], [2, 0], [1, rng.int(65536)]] as const),
      proto: rng.chance(0.5) ? 6 : 17,
      family,
      id,
      tableSlot,
      tableSize,
      persistTimeout: rng.pick([0, 1, 10, 60, 300, 4294967295]),
      persistMask: persistMask.toString('hex'),
      flags,
      hashFields: rng.weighted([[3, 0x1f], [2, 0x01], [1, 0x03], [1, 0x04], [1, rng.int(256)]] as const),
      fwmark: rng.weighted([[7, 0], [2, rng.range(1, 9)], [1, rng.u32()]] as const),
    });
    if ((flags & ABI.LVS_SVC_F_ROTATE) && rng.chance(0.5)) {
      cursors.push({ id, value: rng.weighted([[6, rng.int(size + 3)], [1, rng.u32()]] as const) });
    }
  }

  // lvs_dests and lvs_real_conns: small weights, thresholds and counts so that overload, ties and
  // idle realservers all happen; some huge values, negative counts (a moment's undercount).
  const destIdx = [...new Set([...realIdx, ...Array.from({ length: rng.int(3) }, () => rng.int(64))])];
  const dests = destIdx.filter(() => rng.chance(0.9)).map((index) => ({
    index,
    weight: rng.weighted([[20, rng.range(1, 5)], [3, 0], [2, 100], [1, 0xffffffff]] as const),
    uThresh: rng.weighted([[12, 0], [6, rng.range(1, 4)], [1, 0xffffffff]] as const),
    lThresh: rng.weighted([[12, 0], [4, rng.range(1, 3)], [1, rng.u32()]] as const),
  }));
  const counts = destIdx.filter(() => rng.chance(0.7)).map((index) => ({
    index,
    active: rng.weighted([[20, rng.int(5)], [2, -1], [1, 0x7fffffff], [1, rng.range(100, 1000)]] as const),
    inactive: rng.weighted([[20, rng.int(5)], [2, -1], [1, rng.range(100, 1000)]] as const),
    overloaded: rng.weighted([[10, 0], [4, 1], [1, rng.u32()]] as const),
  }));
  const cfg: CaseConfig = {
    knobs, settings, services, tables, reals, txPorts: [TX_PORT], cursors, conns: [], persist: [], frags: [],
    accepted: acceptedMacs(rng), dests, counts,
  };
  if (nat) {
    cfg.fib = nat.fib;
    if (rng.chance(0.75)) cfg.txPorts.push(nat.egress);
  }
  if (rng.chance(0.5)) {
    // extra "maybe" bits: random, or on addresses that carry no service (so those take a lookup)
    const others = [...VIPS4, ...OTHER4, ...VIPS6, ...OTHER6];
    cfg.vipFilter = {
      noise: Array.from({ length: rng.int(6) }, () => (rng.chance(0.5) ? vipFilterSlot(rng.pick(others)) * 2 + rng.int(2) : rng.int(1 << 18))),
    };
  }
  const u: Universe = { cfg, services };
  const pickReal = () => (realIdx.length && rng.chance(0.9) ? rng.pick(realIdx) : rng.int(70));
  const genFor = (ri: number) => (rng.chance(0.75) ? (reals.find((r) => r.index === ri)?.gen ?? 0) : rng.int(4));
  // Ages: half-way between whole-second thresholds, or within 80 ms of one (the kernel then has
  // to read its precise clock; frames sent later in the case may see the age cross it).
  const thresholds = [1, 30, ...settings.timeouts, ...services.map((s) => s.persistTimeout)].filter((t) => t > 0 && t < 1e6);
  const age = () => (rng.chance(0.75) || !thresholds.length ? ageNs(rng.pick(AGES)) : ageNs(rng.pick(thresholds) + (rng.int(160001) - 80000) / 1e6));

  // pre-existing connections, templates and fragment pins
  for (let i = rng.int(16); i > 0; i--) {
    const f = flowTuple(rng, u);
    const real = pickReal();
    cfg.conns.push({
      key: flowKeyHex(f), real, gen: genFor(real), ageNs: age(),
      state: rng.weighted([[90, rng.int(6)], [10, rng.range(6, 255)]] as const),
    });
  }
  // LVS-NAT reply entries (the reply's own tuple), some with their client entry
  for (let i = nat ? rng.int(10) : 0; i > 0; i--) {
    const t = replyTuple(rng, u);
    const real = rng.chance(0.85) ? (reals.find((r) => Buffer.from(r.addr, 'hex').equals(t.saddr))?.index ?? pickReal()) : pickReal();
    // mostly live entries of the slot they name (else most would have timed out)
    const entry = {
      real, gen: rng.chance(0.9) ? (reals.find((r) => r.index === real)?.gen ?? 0) : rng.int(4),
      ageNs: rng.chance(0.7) ? ageNs(rng.pick([0.25, 0.5, 1.5, 5.5])) : age(),
      state: rng.weighted([[35, 5], [35, 2], [20, rng.int(6)], [10, rng.range(6, 255)]] as const),
    };
    cfg.conns.push({ key: flowKeyHex({ ...t, dir: ABI.LVS_DIR_REPLY }), ...entry });
    const r = reals.find((x) => x.index === real);
    if (r?.vip && rng.chance(0.6)) {
      const client = { saddr: t.daddr, daddr: Buffer.from(r.vip, 'hex'), sport: t.dport, dport: r.vport || t.sport, proto: t.proto, family: t.family };
      cfg.conns.push({ key: flowKeyHex(client), ...entry, ageNs: rng.chance(0.5) ? entry.ageNs : age() });
    }
  }
  // strays (not yet promoted): around the 1 s promotion gap and the 10 s lifetime
  cfg.strays = [];
  for (let i = rng.int(10); i > 0; i--) {
    const f = flowTuple(rng, u);
    const real = pickReal();
    cfg.strays.push({
      key: flowKeyHex(f), real, gen: genFor(real), state: rng.chance(0.9) ? 0 : rng.int(256),
      ageNs: rng.chance(0.7) ? ageNs(rng.pick([0.25, 0.5, 0.95, 1.05, 1.5, 5.5, 9.5, 10.5, 60.5, -5.5])) : age(),
    });
  }
  // SYN_RECV ways (lvs_synrecv, 4 buckets of 4 ways in the fuzzer: full buckets are common, so
  // new SYNs evict the way seen longest ago): around the SYN_RECV timeout, some torn (check
  // word off), at any way of their bucket
  cfg.synrecv = [];
  const synRecvTimeout = settings.timeouts[ABI.LVS_CS_SYN_RECV] ?? 0;
  // (a dense case: enough young, live ways to fill most buckets, each placed in its bucket's
  // next free way, so that the frames' new SYNs find full buckets and evict)
  const dense = rng.chance(0.4);
  for (let i = dense ? 10 + rng.int(14) : rng.int(8); i > 0; i--) {
    const f = flowTuple(rng, u);
    const real = dense && realIdx.length ? rng.pick(realIdx) : pickReal();
    cfg.synrecv.push({
      key: flowKeyHex({ ...f, proto: rng.chance(0.9) ? 6 : f.proto }), real, gen: dense ? reals.find((r) => r.index === real)?.gen ?? 0 : genFor(real),
      svcId: rng.chance(0.8) && services.length ? rng.pick(services).id : rng.int(20), torn: rng.chance(dense ? 0.03 : 0.15),
      ...(dense ? {} : { way: rng.int(4) }),
      ageNs: dense ? ageNs(rng.pick([0.25, 0.5, 1.5, 2.5, 5.5])) : rng.chance(0.6) ? ageNs(rng.pick([0.25, 1.5, 5.5, synRecvTimeout - 0.5, synRecvTimeout + 0.5, -5.5])) : age(),
    });
  }
  for (let i = rng.int(6); i > 0; i--) {
    const s = rng.pick(services);
    const client = rng.pick(s.family === 4 ? CLIENTS4 : CLIENTS6);
    const real = pickReal();
    const key = persistKeyHex(client, Buffer.from(s.persistMask, 'hex'), rng.chance(0.9) ? s.id : rng.int(20), s.family);
    cfg.persist.push({ key, real, gen: genFor(real), ageNs: age() });
  }
  for (let i = rng.int(6); i > 0; i--) {
    const ft = fragTuple(rng, u);
    const real = pickReal();
    cfg.frags.push({ key: fragKeyHex(ft.saddr, ft.daddr, ft.id, ft.proto, ft.family), real, gen: genFor(real), ageNs: rng.chance(0.8) ? ageNs(rng.pick([0.5, 10.5, 29.5, 30.5, 100.5, -5.5])) : age() });
  }
  if (rng.chance(0.4)) genMarks(rng, cfg);
  return cfg;
}

const MARK_PORTS = [80, 443, 53, 8080, 22];

/**
 * Firewall marks: lvs_fwmarks entries on prefixes of the VIPs (nested: a /32 inside a /24 inside
 * a /0, so the longest match decides), port ranges around the ports flows use, count past the
 * ranges held now and then; firewall-mark services (clones of the case's services under the
 * mark's key, often persistent: persistence across the ports of a mark) for some marks only;
 * port services flagged MARKED at random (covered or not); classification switched on mostly.
 */
function genMarks(rng: Rng, cfg: CaseConfig): void {
  const marks = [1, 2, 3, rng.u32() || 7].slice(0, rng.range(1, 4));
  const base = [...cfg.services];
  for (const mark of marks) {
    if (!base.length || rng.chance(0.2)) continue; // a mark without a service
    for (const family of rng.chance(0.25) ? [4, 6] : [rng.chance(0.5) ? 4 : 6]) {
      const b = rng.pick(base);
      const addr = Buffer.alloc(16);
      addr.writeUInt32BE(mark >>> 0, 0);
      const flags = rng.chance(0.5) ? (b.flags | ABI.LVS_SVC_F_PERSIST) & ~ABI.LVS_SVC_F_OPS : b.flags;
      cfg.services.push({ ...b, addr: addr.toString('hex'), port: 0, proto: ABI.LVS_PROTO_FWMARK, family, flags, persistTimeout: rng.pick([b.persistTimeout, 300]) });
    }
  }
  for (const s of cfg.services) if (s.proto !== ABI.LVS_PROTO_FWMARK && rng.chance(0.3)) s.flags |= ABI.LVS_SVC_F_MARKED;
  const entries = new Map<string, NonNullable<CaseConfig['marks']>[number]>();
  const markFamilies = cfg.services.filter((x) => x.proto === ABI.LVS_PROTO_FWMARK).map((x) => x.family);
  for (let i = rng.range(2, 9); i > 0; i--) {
    const family = markFamilies.length && rng.chance(0.8) ? rng.pick(markFamilies) : rng.chance(0.5) ? 4 : 6;
    const vip = rng.pick(family === 4 ? [...VIPS4, ...OTHER4] : [...VIPS6, ...OTHER6]);
    const plen = family === 4 ? rng.pick([32, 32, 24, 16, 0, rng.int(33)]) : rng.pick([128, 128, 64, 48, 0, rng.int(129)]);
    const prefix = Buffer.from(vip);
    for (let b = plen; b < 128; b++) prefix[b >> 3] = prefix[b >> 3]! & ~(0x80 >> (b & 7));
    const proto = rng.chance(0.5) ? 6 : 17;
    const n = rng.weighted([[80, rng.range(1, 4)], [15, rng.range(4, 9)], [5, 0]] as const);
    const ranges = Array.from({ length: n }, () => {
      const at = rng.chance(0.8) ? rng.pick(MARK_PORTS) : rng.int(65536);
      const from = Math.max(0, at - rng.pick([0, 0, 1, 100]));
      return { from: rng.chance(0.1) ? 0 : from, to: Math.min(65535, at + rng.pick([0, 0, 1, 100, 65535])), mark: rng.chance(0.9) ? rng.pick(marks) : rng.u32() };
    });
    const count = rng.weighted([[90, n], [5, rng.range(n, 12)], [5, rng.int(n + 1)]] as const);
    entries.set(`${family}/${proto}/${prefix.toString('hex')}/${plen}`, { family, proto, prefix: prefix.toString('hex'), plen, ranges, count });
  }
  cfg.marks = [...entries.values()];
  if (rng.chance(0.9)) cfg.settings.flags = (cfg.settings.flags ?? 0) | ABI.LVS_CFG_F_FWMARK;
}

interface Tuple { saddr: Buffer; daddr: Buffer; sport: number; dport: number; proto: number; family: 4 | 6 }

/** A client flow toward one of the services (usually) or elsewhere. */
function flowTuple(rng: Rng, u: Universe): Tuple {
  let family: 4 | 6, daddr: Buffer, dport: number, proto: number;
  // Cases with firewall-mark services send a good share of their flows to them.
  const fwm = u.services.filter((x) => x.proto === ABI.LVS_PROTO_FWMARK);
  const s = fwm.length && rng.chance(0.35) ? rng.pick(fwm) : u.services.length && rng.chance(0.88) ? rng.pick(u.services) : undefined;
  if (s && s.proto === ABI.LVS_PROTO_FWMARK) {
    // a mark's service: a flow to one of the addresses and ports the marks are about
    family = s.family === 4 ? 4 : 6;
    daddr = rng.pick(family === 4 ? [...VIPS4, ...OTHER4] : [...VIPS6, ...OTHER6]);
    dport = rng.chance(0.8) ? rng.pick(MARK_PORTS) : rng.int(65536);
    proto = rng.chance(0.5) ? 6 : 17;
  } else if (s) {
    family = s.family === 4 ? 4 : 6;
    daddr = Buffer.from(s.addr, 'hex');
    dport = s.port !== 0 && rng.chance(0.9) ? s.port : rng.pick([80, 53, 8080, rng.int(65536)]);
    proto = rng.chance(0.92) ? s.proto : (s.proto === 6 ? 17 : 6);
  } else {
    family = rng.chance(0.5) ? 4 : 6;
    daddr = rng.pick(family === 4 ? [...VIPS4, ...OTHER4] : [...VIPS6, ...OTHER6]);
    dport = rng.pick([80, 53, 443, rng.int(65536)]);
    proto = rng.chance(0.5) ? 6 : 17;
  }
  const saddr = rng.chance(0.93) ? rng.pick(family === 4 ? CLIENTS4 : CLIENTS6) : (family === 4 ? Buffer.concat([rng.bytes(4), Buffer.alloc(12)]) : rng.bytes(16));
  const sport = rng.chance(0.9) ? rng.pick(CPORTS) : rng.int(65536);
  return { saddr, daddr, sport, dport, proto, family };
}

/** A realserver's reply toward a client: usually from an LVS-NAT slot's address and port, to a
 *  client and port that client flows use (so replies meet the entries those flows made). */
function replyTuple(rng: Rng, u: Universe): Tuple {
  // half the time the tuple of a reply entry the configuration holds
  const entries = u.cfg.conns.map((e) => decode(FLOW_KEY, Buffer.from(e.key, 'hex'))).filter((k) => k.dir === ABI.LVS_DIR_REPLY);
  if (entries.length && rng.chance(0.5)) {
    const k = rng.pick(entries);
    return {
      saddr: Buffer.from(k.saddr as Uint8Array), daddr: Buffer.from(k.daddr as Uint8Array), sport: k.sport as number, dport: k.dport as number,
      proto: k.proto as number, family: k.family === 6 ? 6 : 4,
    };
  }
  const nats = u.cfg.reals.filter((r) => r.method === ABI.LVS_FWD_NAT);
  const r = nats.length && rng.chance(0.9) ? rng.pick(nats) : u.cfg.reals.length ? rng.pick(u.cfg.reals) : undefined;
  const family: 4 | 6 = r?.family === 6 ? 6 : r?.family === 4 ? 4 : rng.chance(0.5) ? 4 : 6;
  const saddr = r && rng.chance(0.95) ? Buffer.from(r.addr, 'hex') : rng.pick(family === 4 ? CLIENTS4 : CLIENTS6);
  const svc = u.services.filter((s) => s.family === family);
  const sport = r?.port && rng.chance(0.85) ? r.port : rng.pick([80, 53, 443, 8080, rng.int(65536)]);
  const proto = svc.length && rng.chance(0.8) ? rng.pick(svc).proto : rng.chance(0.5) ? 6 : 17;
  // mostly a client the FIB has a next hop for (the others' replies go to the kernel)
  const routed = (u.cfg.fib ?? []).map((e) => Buffer.from(e.dst, 'hex')).filter((a) => (family === 4) === a.subarray(4).equals(Buffer.alloc(12)));
  const daddr = routed.length && rng.chance(0.6) ? rng.pick(routed) : rng.pick(family === 4 ? CLIENTS4 : CLIENTS6);
  const dport = rng.chance(0.9) ? rng.pick(CPORTS) : rng.int(65536);
  return { saddr, daddr, sport, dport, proto, family };
}

/** TTL / hop limit of a built frame set to v (IPv4 header checksum fixed), for the "expires
 *  here" edge of NAT replies. */
function setHop(f: Buffer, v: number): Buffer {
  const l3 = l3Offset(f);
  if (f.length < l3 + 20) return f;
  if (f[l3]! >> 4 === 4) {
    f[l3 + 8] = v;
    f.writeUInt16BE(0, l3 + 10);
    f.writeUInt16BE(internetChecksum(f.subarray(l3, l3 + (f[l3]! & 0xf) * 4)), l3 + 10);
  } else if (f.length >= l3 + 40) {
    f[l3 + 7] = v;
  }
  return f;
}

/** An LVS-NAT reply (whole, or the first / a later fragment of one). */
function replyFrame(rng: Rng, u: Universe, frag: 'none' | 'first' | 'later'): Buffer {
  const t = replyTuple(rng, u);
  let f: Buffer;
  const id = rng.pick(t.family === 4 ? IPID4 : IPID6);
  if (frag === 'later') {
    const body = rng.bytes(rng.range(8, 200));
    const offset = rng.weighted([[3, 185], [2, rng.range(1, 0x1fff)]] as const);
    const mf = rng.chance(0.5);
    f = frameOf(rng, t.family, ipPacket(rng, t, body, { id, offset, mf, frag6: { offset, m: mf, id } }));
  } else {
    const pay = payloadLen(rng, u, 60);
    const l4 = l4Header(rng, t, pay);
    if (t.proto === 17 && rng.chance(0.1)) l4.writeUInt16BE(0, 6); // no UDP checksum
    const body = Buffer.concat([l4, rng.bytes(Math.min(pay, MAX_FRAME))]);
    f = frameOf(rng, t.family, ipPacket(rng, t, body, frag === 'first' ? { mf: true, id, frag6: { offset: 0, m: true, id } } : {}));
  }
  return rng.chance(0.06) ? setHop(f, rng.pick([0, 1, 2])) : f;
}

/** An ICMP error from the realserver's side (the realserver or a router before it) about a
 *  client's packet as the realserver got it: client -> RIP:port, sent to the client. */
function realserverIcmpFrame(rng: Rng, u: Universe): Buffer {
  const r = replyTuple(rng, u); // the reply direction: RIP:port -> client:cport
  const family = r.family;
  const quotedT: Tuple = { saddr: r.daddr, daddr: r.saddr, sport: r.dport, dport: r.sport, proto: r.proto, family };
  const innerL4 = Buffer.concat([Buffer.alloc(4), rng.bytes(rng.weighted([[3, 4], [2, 16], [1, 0]] as const))]);
  innerL4.writeUInt16BE(quotedT.sport, 0);
  innerL4.writeUInt16BE(quotedT.dport, 2);
  let quoted = family === 4
    ? Buffer.concat([ipv4Header(rng, quotedT.saddr, quotedT.daddr, innerL4.length, { proto: r.proto, options: rng.chance(0.85) ? 0 : rng.range(1, 4) }), innerL4])
    : Buffer.concat([ipv6Header(rng, quotedT.saddr, quotedT.daddr, innerL4.length, r.proto).subarray(0, 40), innerL4]);
  if (family === 6) { quoted[6] = r.proto; quoted.writeUInt16BE(innerL4.length, 4); }
  if (rng.chance(0.1)) quoted = quoted.subarray(0, rng.int(quoted.length + 1));
  const icmp = Buffer.alloc(8);
  icmp[0] = family === 4 ? rng.pick([3, 3, 11, 12]) : rng.pick([1, 1, 2, 3, 4]);
  icmp[1] = rng.int(5);
  rng.bytes(4).copy(icmp, 4);
  const src = rng.chance(0.8) ? r.saddr : (family === 4 ? a4('192.168.0.254') : a6([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe]));
  let body = Buffer.concat([icmp, quoted]);
  const outer: Tuple = { saddr: src, daddr: r.daddr, sport: 0, dport: 0, proto: family === 4 ? 1 : 58, family };
  if (family === 6) {
    const pseudo = Buffer.alloc(40);
    src.copy(pseudo, 0); r.daddr.copy(pseudo, 16);
    pseudo.writeUInt32BE(body.length, 32);
    pseudo.writeUInt32BE(58, 36);
    body.writeUInt16BE(internetChecksum(pseudo, body), 2);
  } else body.writeUInt16BE(internetChecksum(body), 2);
  body = Buffer.from(body);
  const f = frameOf(rng, family, family === 4
    ? Buffer.concat([ipv4Header(rng, outer.saddr, outer.daddr, body.length, { proto: 1 }), body])
    : Buffer.concat([ipv6Header(rng, outer.saddr, outer.daddr, body.length, 58), body]));
  return rng.chance(0.04) ? setHop(f, rng.pick([0, 1])) : f;
}

function fragTuple(rng: Rng, u: Universe): { saddr: Buffer; daddr: Buffer; id: number; proto: number; family: 4 | 6 } {
  const f = flowTuple(rng, u);
  return {
    saddr: f.saddr, daddr: f.daddr, family: f.family,
    id: rng.pick(f.family === 4 ? IPID4 : IPID6),
    proto: rng.weighted([[85, f.proto], [5, 1], [5, 58], [5, 60]] as const),
  };
}

/** The test-run interface's accepted MACs: its own always (with its own egress MAC, or another
 *  one so that a source copied from the destination shows), the others by chance. */
function acceptedMacs(rng: Rng): NonNullable<CaseConfig['accepted']> {
  const egress = rng.chance(0.8) ? CASE_DIRECTOR_MAC : '0200000000e0';
  const out = [{ ifindex: TEST_RUN_IFINDEX, mac: CASE_DIRECTOR_MAC, egress }];
  // Uppers no frame is sent to, before the others: past LVS_L2_IF_MACS the upper's and the
  // vmac's MACs are checked in lvs_l2_addrs, not inline in lvs_l2_ifs.
  for (let i = rng.chance(0.35) ? rng.int(5) + 1 : 0; i > 0; i--) out.push({ ifindex: TEST_RUN_IFINDEX, mac: `0200000cc0${String(i).padStart(2, '0')}`, egress });
  if (rng.chance(0.8)) out.push({ ifindex: TEST_RUN_IFINDEX, mac: UPPER_MAC, egress });
  if (rng.chance(0.5)) out.push({ ifindex: TEST_RUN_IFINDEX, mac: VRRP_MAC, egress });
  out.push({ ifindex: OTHER_IFINDEX, mac: OTHER_IF_MAC, egress });
  if (rng.chance(0.3)) out.push({ ifindex: TEST_RUN_IFINDEX, mac: rng.pick([BROADCAST_MAC, MULTICAST_MAC]), egress });
  return out;
}

/** A frame's destination MAC: mostly the director's, else an upper's, a VRRP vmac, another
 *  host's, one accepted only elsewhere, broadcast, multicast, or any six bytes. */
function dstMac(rng: Rng): Buffer {
  const foreign = rng.bytes(6);
  foreign[0] = foreign[0]! & 0xfe;
  return rng.weighted([
    [70, DIRECTOR_MAC], [8, Buffer.from(UPPER_MAC, 'hex')], [3, Buffer.from(VRRP_MAC, 'hex')], [5, foreign],
    [3, Buffer.from(OTHER_IF_MAC, 'hex')], [3, Buffer.from(BROADCAST_MAC, 'hex')], [3, Buffer.from(MULTICAST_MAC, 'hex')],
    [5, rng.bytes(6)],
  ] as const);
}

// ---- frames ------------------------------------------------------------------------------------

function l2(rng: Rng, ethertype: number): Buffer {
  const nTags = rng.weighted([[12, 0], [4, 1], [3, 2], [1, 3]] as const);
  const h = Buffer.alloc(14 + 4 * nTags);
  dstMac(rng).copy(h, 0);
  Buffer.from([2, 0, 0, 0, 0, rng.pick([0xfe, 0xfd, rng.int(256)])]).copy(h, 6);
  let at = 12;
  for (let i = 0; i < nTags; i++) {
    h.writeUInt16BE(rng.weighted([[5, 0x8100], [4, 0x88a8]] as const), at);
    h.writeUInt16BE(rng.int(0x10000), at + 2);
    at += 4;
  }
  h.writeUInt16BE(ethertype, at);
  return h;
}

interface Ip4Opts { proto: number; id?: number; df?: boolean; mf?: boolean; offset?: number; options?: number }

function ipv4Header(rng: Rng, src: Buffer, dst: Buffer, payloadLen: number, o: Ip4Opts): Buffer {
  const optWords = o.options ?? (rng.chance(0.8) ? 0 : rng.range(1, 10));
  const h = Buffer.alloc(20 + optWords * 4);
  h[0] = 0x40 | (5 + optWords);
  h[1] = rng.chance(0.5) ? 0 : rng.int(256);
  h.writeUInt16BE(Math.min(0xffff, h.length + payloadLen), 2);
  h.writeUInt16BE(o.id ?? rng.pick(IPID4), 4);
  const df = o.df ?? rng.chance(0.6);
  h.writeUInt16BE((df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.offset ?? 0) & 0x1fff), 6);
  h[8] = rng.range(1, 255);
  h[9] = o.proto;
  src.copy(h, 12, 0, 4);
  dst.copy(h, 16, 0, 4);
  if (optWords) {
    const opts = rng.chance(0.5) ? Buffer.alloc(optWords * 4, 1) : rng.bytes(optWords * 4);
    opts.copy(h, 20);
  }
  h.writeUInt16BE(internetChecksum(h), 10);
  return h;
}

type Ext = { type: number; body: Buffer };

/** IPv6 header and extension header chain ending in `proto`; frag: the fragment header to put
 *  in the chain (offset in 8-byte units, M flag), if any. */
function ipv6Header(rng: Rng, src: Buffer, dst: Buffer, payloadLen: number, proto: number, frag?: { offset: number; m: boolean; id: number }): Buffer {
  const exts: Ext[] = [];
  const n = rng.weighted([[12, 0], [3, 1], [2, 2], [1, rng.range(3, 5)], [1, rng.range(5, 7)]] as const);
  for (let i = 0; i < n; i++) {
    const type = rng.weighted([[3, 0], [2, 43], [3, 60], [1, 44]] as const);
    if (type === 44) {
      const b = Buffer.alloc(6);
      b.writeUInt16BE(rng.chance(0.7) ? 0 : rng.int(0x10000), 0); // mostly atomic fragments
      b.writeUInt32BE(rng.pick(IPID6), 2);
      exts.push({ type, body: b });
    } else {
      const len = rng.weighted([[6, 0], [2, 1], [1, 2]] as const);
      exts.push({ type, body: rng.bytes(6 + len * 8) });
    }
  }
  if (frag) {
    const b = Buffer.alloc(6);
    b.writeUInt16BE(((frag.offset & 0x1fff) << 3) | (frag.m ? 1 : 0) | (rng.chance(0.1) ? 6 : 0), 0);
    b.writeUInt32BE(frag.id, 2);
    exts.splice(rng.int(exts.length + 1), 0, { type: 44, body: b });
  }
  const chain: Buffer[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1]!.type : proto;
    if (e.type === 44) {
      const f = Buffer.alloc(8);
      f[0] = next;
      e.body.copy(f, 2);
      chain.push(f);
    } else {
      const b = Buffer.alloc(2 + e.body.length);
      b[0] = next;
      b[1] = b.length / 8 - 1;
      e.body.copy(b, 2);
      chain.push(b);
    }
  });
  const ext = Buffer.concat(chain);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | (rng.int(256) << 20) | rng.int(0x100000)) >>> 0, 0);
  h.writeUInt16BE(Math.min(0xffff, ext.length + payloadLen), 4);
  h[6] = exts.length ? exts[0]!.type : proto;
  h[7] = rng.range(1, 255);
  src.copy(h, 8);
  dst.copy(h, 24);
  return Buffer.concat([h, ext]);
}

function tcpHeader(rng: Rng, sport: number, dport: number): Buffer {
  const doff = rng.weighted([[85, 5], [10, rng.range(6, 15)], [5, rng.range(0, 4)]] as const);
  const h = Buffer.alloc(Math.max(20, doff * 4));
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(rng.u32(), 4);
  h.writeUInt32BE(rng.u32(), 8);
  h[12] = (doff << 4) | (rng.chance(0.05) ? rng.int(16) : 0);
  h[13] = rng.weighted([[4, 0x02], [4, 0x10], [2, 0x18], [2, 0x11], [1, 0x04], [1, 0x14], [1, 0x12], [1, 0x01], [1, 0x00], [1, rng.int(256)]] as const);
  h.writeUInt16BE(rng.int(0x10000), 14);
  h.writeUInt16BE(rng.int(0x10000), 16);
  if (h.length > 20) rng.bytes(h.length - 20).copy(h, 20);
  return h;
}

function udpHeader(rng: Rng, sport: number, dport: number, payloadLen: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE((8 + payloadLen) & 0xffff, 4);
  h.writeUInt16BE(rng.int(0x10000), 6);
  return h;
}

function l4Header(rng: Rng, t: Tuple, payloadLen: number): Buffer {
  if (t.proto === 6) return tcpHeader(rng, t.sport, t.dport);
  if (t.proto === 17) return udpHeader(rng, t.sport, t.dport, payloadLen);
  return rng.bytes(rng.int(12));
}

function payloadLen(rng: Rng, u: Universe, overhead: number): number {
  const mtu = u.cfg.settings.tunMtu || 1500;
  const n = rng.weighted([[6, rng.int(41)], [2, rng.range(40, 200)], [2, mtu - overhead - rng.range(10, 50) + rng.range(0, 80)], [1, rng.range(1000, 3000)]] as const);
  return Math.max(0, Math.min(n, MAX_FRAME - 300)); // whole frames (truncation is a mutation)
}

function finish(parts: Buffer[]): Buffer {
  const f = Buffer.concat(parts);
  return f.length > MAX_FRAME ? f.subarray(0, MAX_FRAME) : f;
}

/** An IP packet (L3 header + rest) of the tuple's family. */
function ipPacket(rng: Rng, t: Tuple, body: Buffer, o: Partial<Ip4Opts> & { frag6?: { offset: number; m: boolean; id: number } } = {}): Buffer {
  if (t.family === 4) return Buffer.concat([ipv4Header(rng, t.saddr, t.daddr, body.length, { proto: t.proto, ...o }), body]);
  return Buffer.concat([ipv6Header(rng, t.saddr, t.daddr, body.length, t.proto, o.frag6), body]);
}

function frameOf(rng: Rng, family: 4 | 6, ip: Buffer): Buffer {
  return finish([l2(rng, family === 4 ? 0x0800 : 0x86dd), ip]);
}

function flowFrame(rng: Rng, u: Universe, first: boolean): Buffer {
  const t = flowTuple(rng, u);
  const pay = payloadLen(rng, u, 60);
  const body = Buffer.concat([l4Header(rng, t, pay), rng.bytes(Math.min(pay, MAX_FRAME))]);
  if (!first) return frameOf(rng, t.family, ipPacket(rng, t, body));
  const id = rng.pick(t.family === 4 ? IPID4 : IPID6);
  return frameOf(rng, t.family, ipPacket(rng, t, body, { mf: true, id, frag6: { offset: 0, m: true, id } }));
}

function laterFragmentFrame(rng: Rng, u: Universe): Buffer {
  const ft = fragTuple(rng, u);
  const t: Tuple = { saddr: ft.saddr, daddr: ft.daddr, sport: 0, dport: 0, proto: ft.proto, family: ft.family };
  const body = rng.bytes(rng.weighted([[5, rng.range(8, 200)], [1, payloadLen(rng, u, 60)]] as const));
  const offset = rng.weighted([[3, 185], [2, rng.range(1, 0x1fff)]] as const);
  const mf = rng.chance(0.5);
  return frameOf(rng, t.family, ipPacket(rng, t, body, { id: ft.id, offset, mf, frag6: { offset, m: mf, id: ft.id } }));
}

/** An ICMP / ICMPv6 error quoting a packet from a VIP (usually a service's) to a client. */
function icmpErrorFrame(rng: Rng, u: Universe): Buffer {
  const f = flowTuple(rng, u); // the client's flow; the quoted packet goes the other way
  const family = f.family;
  const quotedProto = rng.weighted([[90, f.proto], [5, 1], [5, rng.int(256)]] as const);
  const innerL4 = Buffer.concat([Buffer.alloc(4), rng.bytes(rng.weighted([[3, 4], [2, 16], [1, 0]] as const))]);
  innerL4.writeUInt16BE(f.dport, 0);
  innerL4.writeUInt16BE(f.sport, 2);
  const quotedTuple: Tuple = { saddr: f.daddr, daddr: f.saddr, sport: f.dport, dport: f.sport, proto: quotedProto, family };
  let quoted = ipPacket(rng, quotedTuple, Buffer.concat([innerL4, rng.bytes(rng.weighted([[4, 0], [1, payloadLen(rng, u, 100)]] as const))]), { options: rng.chance(0.8) ? 0 : rng.range(1, 4) });
  if (family === 6 && rng.chance(0.9)) {
    // a router quotes the packet as it saw it: fix up a plain IPv6 header when extension headers were drawn
    const h = Buffer.alloc(40);
    quoted.copy(h, 0, 0, 8);
    h[6] = quotedProto;
    quotedTuple.saddr.copy(h, 8);
    quotedTuple.daddr.copy(h, 24);
    quoted = Buffer.concat([h, innerL4]);
    quoted.writeUInt16BE(innerL4.length, 4);
  }
  if (rng.chance(0.15)) quoted = quoted.subarray(0, rng.int(quoted.length + 1));
  const icmp = Buffer.alloc(8);
  if (family === 4) {
    icmp[0] = rng.weighted([[4, 3], [2, 11], [1, 12], [2, rng.pick([0, 8, 5, 4, rng.int(256)])]] as const);
    icmp[1] = rng.chance(0.5) ? 4 : rng.int(16);
  } else {
    icmp[0] = rng.weighted([[2, 1], [2, 2], [1, 3], [1, 4], [2, rng.pick([128, 129, 135, 0, 5, rng.int(256)])]] as const);
    icmp[1] = rng.int(4);
  }
  rng.bytes(4).copy(icmp, 4);
  const body = Buffer.concat([icmp, quoted]);
  body.writeUInt16BE(internetChecksum(body), 2);
  const router = rng.chance(0.5) ? rng.pick(family === 4 ? CLIENTS4 : CLIENTS6) : (family === 4 ? a4('192.0.2.1') : a6([0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1]));
  const dst = rng.chance(0.85) ? f.daddr : rng.pick(family === 4 ? [...VIPS4, ...OTHER4] : [...VIPS6, ...OTHER6]);
  const outer: Tuple = { saddr: router, daddr: dst, sport: 0, dport: 0, proto: family === 4 ? 1 : 58, family };
  if (rng.chance(0.05)) outer.proto = family === 4 ? 58 : 1;
  const first = rng.chance(0.05);
  const id = rng.pick(family === 4 ? IPID4 : IPID6);
  return frameOf(rng, family, ipPacket(rng, outer, body, first ? { mf: true, id, frag6: { offset: 0, m: true, id } } : {}));
}

function otherIpFrame(rng: Rng, u: Universe): Buffer {
  const t = flowTuple(rng, u);
  t.proto = rng.pick([1, 58, 47, 50, 132, 41, 4, rng.int(256)]);
  const body = rng.bytes(rng.int(100));
  if ((t.proto === 1 || t.proto === 58) && body.length >= 1) body[0] = rng.pick([0, 8, 128, 129, 135, 3, 1, 2]);
  return frameOf(rng, t.family, ipPacket(rng, t, body));
}

function nonIpFrame(rng: Rng, u: Universe): Buffer {
  const kind = rng.pick(['arp', 'lldp', 'mpls', 'v4-as-v6', 'v6-as-v4', 'random'] as const);
  if (kind === 'v4-as-v6' || kind === 'v6-as-v4') {
    const t = flowTuple(rng, u);
    const ip = ipPacket(rng, t, Buffer.concat([l4Header(rng, t, 10), rng.bytes(10)]));
    return finish([l2(rng, t.family === 4 ? 0x86dd : 0x0800), ip]);
  }
  const type = kind === 'arp' ? 0x0806 : kind === 'lldp' ? 0x88cc : kind === 'mpls' ? 0x8847 : rng.int(0x10000);
  return finish([l2(rng, type), rng.bytes(rng.int(80))]);
}

/** Random damage: truncation, byte changes, length fields, trailing bytes. */
function mutate(rng: Rng, f: Buffer): Buffer {
  let b = Buffer.from(f);
  for (let n = rng.range(1, 3); n > 0; n--) {
    const what = rng.weighted([[3, 'truncate'], [3, 'byte'], [2, 'bit'], [2, 'length'], [1, 'trailer'], [1, 'version']] as const);
    const l3 = l3Offset(b);
    if (what === 'truncate' && b.length > 14) {
      b = b.subarray(0, rng.chance(0.5) ? rng.range(14, b.length - 1) : Math.max(14, Math.min(b.length - 1, l3 + rng.int(80))));
    } else if (what === 'byte') {
      b[rng.int(Math.min(b.length, 120))] = rng.int(256);
    } else if (what === 'bit') {
      const i = rng.int(Math.min(b.length, 120));
      b[i] = b[i]! ^ (1 << rng.int(8));
    } else if (what === 'length' && b.length >= l3 + 6) {
      const at = b[l3]! >> 4 === 6 ? l3 + 4 : l3 + 2;
      const cur = b.readUInt16BE(at);
      b.writeUInt16BE(rng.chance(0.5) ? Math.max(0, Math.min(0xffff, cur + rng.range(-8, 8))) : rng.int(0x10000), at);
    } else if (what === 'trailer') {
      b = Buffer.concat([b, rng.bytes(rng.range(1, 40))]);
    } else if (what === 'version' && b.length > l3) {
      b[l3] = (rng.int(16) << 4) | (b[l3]! & 0xf);
    }
  }
  return b.length > MAX_FRAME ? b.subarray(0, MAX_FRAME) : b;
}

function l3Offset(b: Buffer): number {
  let at = 12;
  for (let i = 0; i < 3 && at + 2 <= b.length; i++) {
    const t = b.readUInt16BE(at);
    if (t !== 0x8100 && t !== 0x88a8) break;
    at += 4;
  }
  return at + 2;
}

export function genFrame(rng: Rng, cfg: CaseConfig, nat?: NatEnv): Buffer {
  const u: Universe = { cfg, services: cfg.services };
  const kind = nat
    ? rng.weighted([[36, 'flow'], [5, 'first'], [6, 'later'], [10, 'icmp'], [20, 'reply'], [4, 'reply-first'], [5, 'reply-later'], [8, 'rs-icmp'], [2, 'other'], [2, 'nonip'], [2, 'garbage']] as const)
    : rng.weighted([[50, 'flow'], [6, 'first'], [9, 'later'], [14, 'icmp'], [5, 'other'], [4, 'nonip'], [2, 'garbage']] as const);
  let f: Buffer;
  switch (kind) {
    case 'reply': f = replyFrame(rng, u, 'none'); break;
    case 'reply-first': f = replyFrame(rng, u, 'first'); break;
    case 'reply-later': f = replyFrame(rng, u, 'later'); break;
    case 'rs-icmp': f = realserverIcmpFrame(rng, u); break;
    case 'flow': f = flowFrame(rng, u, false); break;
    case 'first': f = flowFrame(rng, u, true); break;
    case 'later': f = laterFragmentFrame(rng, u); break;
    case 'icmp': f = icmpErrorFrame(rng, u); break;
    case 'other': f = otherIpFrame(rng, u); break;
    case 'nonip': f = nonIpFrame(rng, u); break;
    default: {
      f = rng.bytes(rng.range(14, 100));
      if (rng.chance(0.6)) f.writeUInt16BE(rng.pick([0x0800, 0x86dd]), 12);
    }
  }
  return rng.chance(0.2) ? mutate(rng, f) : f;
}

/** Configuration number `n` of a run with seed `seed`, with `frames` frames. */
export function genCase(seed: number, n: number, frames: number, nat?: NatEnv): FuzzCase {
  const rng = new Rng(Rng.derive(seed, n));
  const config = genConfig(rng, nat);
  const out: string[] = [];
  for (let i = 0; i < frames; i++) out.push(genFrame(rng, config, nat).toString('hex'));
  // Drawn last: the configurations and frames of a seed stay what they were before the key.
  config.synrecvKey = rng.pick(CASE_SYNRECV_KEYS);
  return { origin: { seed, config: n }, config, frames: out };
}
