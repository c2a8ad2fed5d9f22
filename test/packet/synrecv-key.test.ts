// lvs_synrecv's bucket key (bpf/lvs_synrecv.h, cfg_key_synrecv0..2 in bpf/lvs_maps.h): each load
// of the director draws its own 96 random bits, and not lvs_cfg's hash_seed (shared by the
// directors of an ECMP group, 0 by default). Checked through the real program: the reference
// model's bucket (test/model/synrecv.ts) is where the program puts the SYN_RECV connection of
// 4,000 IPv4 and IPv6 flows on two loads; two loads of one configuration put the same flows in
// other buckets; the four-SYN eviction an attacker computes from hash_seed 0 evicts nothing, while
// the same attack with the director's key does. The key surviving the pinned data plane's later
// commands and `lvs-xdp upgrade`: test/packet/synrecv-key-pins.test.ts.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP, addrBytes } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { encode, FLOW_KEY } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { jhash2 } from '../../src/hash/jhash.js';
import { decodeSynRecv } from '../../src/director/synrecv.js';
import { synRecvBucket, WAYS } from '../model/synrecv.js';
import type { DirectorConfig } from '../../src/model/types.js';

const VIP4 = '10.0.0.1';
const VIP6 = '2001:db8::1';
const resolve: MacResolver = (_s, r) => ({ mac: `02:00:00:00:00:${r.address.slice(-2).replace(/[.:]/, '0')}` });

/** DR services of 3 realservers on both families; the hash seed left at its default (0) unless given. */
function config(scheduler: 'mh' | 'rr', hashSeed?: number): DirectorConfig {
  const svc = (vip: string, rip: (i: number) => string) => ({
    protocol: 'tcp' as const, vip, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
    realservers: [11, 12, 13].map((i) => ({ address: rip(i), port: 80, weight: 1, method: 'dr' as const })),
  });
  return {
    settings: { ...(hashSeed !== undefined ? { hashSeed } : {}), tunnel: { source4: '192.168.1.1' } },
    services: [svc(VIP4, (i) => `192.168.1.${i}`), svc(VIP6, (i) => `2001:db8:1::${i}`)],
  };
}

let h: DirectorHarness;
let h2: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); h2 = await DirectorHarness.load(); });
after(() => { h?.close(); h2?.close(); });
beforeEach(() => { h.reset(); h2.reset(); });

interface Flow { client: string; sport: number }
const vipOf = (f: Flow) => (f.client.includes(':') ? VIP6 : VIP4);
/** Sends the flow's packet; returns the destination MAC (its realserver). */
function syn(d: DirectorHarness, f: Flow, flags: number = TCP.SYN): string {
  const r = d.run(clientPacket(f.client, vipOf(f), { proto: 'tcp', sport: f.sport, dport: 80, flags }));
  assert.equal(r.action, XDP.TX, `${f.client}:${f.sport}`);
  return r.out.subarray(0, 6).toString('hex');
}
const keyOf = (f: Flow): string => encode(FLOW_KEY, {
  saddr: addrBytes(f.client), daddr: addrBytes(vipOf(f)), sport: f.sport, dport: 80, proto: 6, family: f.client.includes(':') ? 6 : 4,
}).toString('hex');

/** Where the program keeps each live SYN_RECV connection: flow key (hex) -> slot. */
function slotsOf(d: DirectorHarness): Map<string, number> {
  const { keys, values } = d.writer.maps.lvs_synrecv.entries();
  const out = new Map<string, number>();
  keys.forEach((k, i) => {
    const s = decodeSynRecv(values[i]!);
    if (s) out.set(s.key.toString('hex'), k.readUInt32LE(0));
  });
  return out;
}

/** A pseudo-random flow i (deterministic: the same flows on every run), IPv6 for odd i. */
function flow(i: number): Flow {
  const x = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  if (i % 2) return { client: `2001:db8:${(x >>> 16).toString(16)}::${(x & 0xffff).toString(16)}:${(i & 0xfff).toString(16)}`, sport: 1024 + (x % 60000) };
  return { client: `198.${18 + (x >>> 24) % 2}.${(x >>> 16) & 255}.${1 + ((x >>> 8) & 127)}`, sport: 1024 + (x % 60000) };
}

const diff = (a: Record<string, bigint>, b: Record<string, bigint>, name: string) => Number(b[name]! - a[name]!);

test('the model\'s bucket is where the program puts a SYN_RECV connection: 4,000 flows, two loads (two keys)', () => {
  assert.notEqual(h.synrecvKey, h2.synrecvKey, 'each load draws its own key');
  for (const d of [h, h2]) {
    d.apply(config('mh'), resolve);
    const n = d.writer.maps.lvs_synrecv.maxEntries;
    let seen = 0;
    // Batches of 100 SYNs into 256 buckets: a bucket rarely takes a 5th (evicted, counted).
    for (let batch = 0; batch < 20; batch++) {
      d.writer.clearSynRecv();
      const c0 = d.counters();
      const flows = Array.from({ length: 100 }, (_, j) => flow(batch * 100 + j));
      for (const f of flows) syn(d, f);
      const at = slotsOf(d);
      const evicted = diff(c0, d.counters(), 'CONN_SYNRECV_EVICTED');
      assert.equal(at.size + evicted, flows.length, 'each SYN holds a way unless a later one evicted it');
      for (const [key, slot] of at) {
        assert.equal(slot - (slot % WAYS), synRecvBucket(key, n, d.synrecvKey), `flow ${key} in slot ${slot}`);
        seen++;
      }
    }
    assert.ok(seen >= 1950, `${seen} of 2,000 flows compared`);
  }
});

test('two directors (two loads) of one configuration and hash seed put the same flows in other buckets', () => {
  for (const d of [h, h2]) d.apply(config('mh', 424242), resolve);
  const flows = Array.from({ length: 64 }, (_, i) => flow(5000 + i));
  const to = flows.map((f) => [syn(h, f), syn(h2, f)]);
  const a = slotsOf(h);
  const b = slotsOf(h2);
  const bucket = (s: number | undefined) => (s === undefined ? -1 : s - (s % WAYS));
  const same = flows.filter((f) => bucket(a.get(keyOf(f))) === bucket(b.get(keyOf(f))));
  // 256 buckets: about one flow in 256 shares its bucket by chance; the hash seed would put all 64 together.
  assert.ok(same.length <= 8, `${same.length} of 64 flows in the same bucket on both directors`);
  // ... while the scheduling hash, keyed by the shared seed, still agrees: mh sends every flow to
  // the same realserver on both.
  assert.deepEqual(to.map(([x]) => x), to.map(([, y]) => y));
  assert.equal(new Set(to.map(([x]) => x)).size, 3, 'the flows spread over the realservers');
});

/** lvs_synrecv's bucket as it was before the director's own key: keyed by lvs_cfg's hash_seed,
 *  which an attacker knows when it is the default 0 (the hash as the README described it). */
function seedBucket(key: string, n: number, seed: number): number {
  const b = Buffer.from(key, 'hex');
  const h0 = jhash2(Array.from({ length: 10 }, (_, i) => b.readUInt32LE(i * 4)), (seed ^ ABI.LVS_SYNRECV_CHECK_SEED) >>> 0) >>> 0;
  return Number((BigInt(h0) * BigInt(n / WAYS)) >> 32n) * WAYS;
}

/** `count` attacker flows (one source, ports from 20000) whose bucket by `bucketOf` is the target's. */
function aimed(target: Flow, count: number, bucketOf: (key: string) => number): Flow[] {
  const want = bucketOf(keyOf(target));
  const out: Flow[] = [];
  for (let p = 20000; out.length < count; p++) {
    const f = { client: '203.0.113.66', sport: p };
    if (bucketOf(keyOf(f)) === want) out.push(f);
  }
  return out;
}

test('four SYNs aimed at a client\'s bucket by hash_seed 0 no longer evict its SYN_RECV connection; aimed by the key, they do', () => {
  h.apply(config('rr'), resolve); // hash seed 0, the default
  const n = h.writer.maps.lvs_synrecv.maxEntries;
  const target: Flow = { client: '198.51.100.7', sport: 53000 };
  // 16 SYNs, 4 times what would fill the bucket the seed names: by the seed's hash each would
  // evict the oldest way, the client's first.
  const bySeed = aimed(target, 16, (k) => seedBucket(k, n, 0));
  syn(h, target);
  const c0 = h.counters();
  for (const f of bySeed) syn(h, f);
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_SYNRECV_EVICTED'), 0, 'no SYN_RECV connection was evicted');
  assert.ok(slotsOf(h).has(keyOf(target)), 'the client\'s way is still there');
  syn(h, target, TCP.ACK);
  const c2 = h.counters();
  assert.equal(diff(c1, c2, 'CONN_SYNRECV_ENTERED'), 1, 'the client\'s ACK enters its SYN_RECV connection');
  assert.equal(diff(c1, c2, 'CONN_STRAY'), 0);

  // The same attack with the director's key (what the key keeps from a remote sender) evicts.
  h.reset();
  h.apply(config('rr'), resolve);
  const byKey = aimed(target, 4, (k) => synRecvBucket(k, n, h.synrecvKey));
  syn(h, target);
  const c3 = h.counters();
  for (const f of byKey) syn(h, f);
  assert.equal(diff(c3, h.counters(), 'CONN_SYNRECV_EVICTED'), 1, 'four SYNs in its bucket evict the client');
  assert.equal(slotsOf(h).has(keyOf(target)), false);
});
