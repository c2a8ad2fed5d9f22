// The per-CPU flow cache (bpf/lvs_flowcache.h): an established flow's packets are answered from
// one per-CPU array probe, and every change the full path would see still takes effect: control
// plane writes (lvs_epoch), the 1-s refresh, packets that move the entry on (FIN), a realserver's
// slot. Each test runs on one CPU, so its flow's packets meet the cache that CPU filled.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, mac, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { onOneCpu } from '../lib/cpu.js';
import { serviceKey } from '../../src/dataplane/compile.js';
import { tombstoneValue } from '../../src/director/plan.js';

const VIP = '10.0.0.1';
const CLIENT = '198.51.100.7';
const RS = { addr: '192.168.1.10', mac: '02:00:00:00:01:0a', method: 'dr' as const };

let h: DirectorHarness;

before(async () => {
  h = await DirectorHarness.load();
});
after(() => h?.close());
beforeEach(() => {
  h.reset();
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1, tunMtu: 1500, ttl: 64 });
  h.setReal(0, RS);
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [0]);
});

const pkt = (flags: number, sport = 41000) => clientPacket(CLIENT, VIP, { proto: 'tcp', sport, dport: 80, flags });

/** SYN and ACK through the full path; the ACK leaves the flow ESTABLISHED and cached. */
function establish(sport = 41000): void {
  assert.equal(h.run(pkt(TCP.SYN, sport)).action, XDP.TX);
  assert.equal(h.run(pkt(TCP.ACK, sport)).action, XDP.TX);
}

function delta(before: Record<string, bigint>): Record<string, bigint> {
  const now = h.counters();
  return Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]!]));
}

test('a cached flow: forwarded and counted exactly as by the full path; an entry deleted behind the control plane\'s back is still answered (what the cache cannot see)', () => onOneCpu(() => {
  establish();
  const c = h.counters();
  for (let i = 0; i < 5; i++) {
    const r = h.run(pkt(TCP.ACK | TCP.PSH));
    assert.equal(r.action, XDP.TX);
    assert.deepEqual(r.out.subarray(0, 6), mac(RS.mac));
  }
  assert.deepEqual(delta(c), { CONN_HIT: 5n, FWD_DR: 5n });
  assert.equal(h.svcStats(0).packets, 7n);
  assert.equal(h.realStats(0).packets, 7n);
  assert.equal(h.svcStats(0).conns, 1n);
  // Deleted without the MapWriter (as an LRU eviction would): the cache still answers, which
  // shows the packets above came from it.
  const conns = h.writer.maps.lvs_conns;
  conns.deleteMany(conns.entries().keys);
  const d = h.counters();
  assert.equal(h.run(pkt(TCP.ACK)).action, XDP.TX);
  assert.deepEqual(delta(d), { CONN_HIT: 1n, FWD_DR: 1n });
}));

test('a control-plane write after the flow was cached: the service\'s tombstone drops its packets', () => onOneCpu(() => {
  establish();
  h.run(pkt(TCP.ACK));
  const key = serviceKey({ protocol: 'tcp', vip: VIP, port: 80 });
  h.writer.execute([{ op: 'tombstones', writes: [{ service: 'x', key, value: tombstoneValue(0) }] }]);
  const c = h.counters();
  assert.equal(h.run(pkt(TCP.ACK)).action, XDP.DROP);
  assert.deepEqual(delta(c), { DROP_SERVICE_GONE: 1n });
}));

test('a connection entry deleted through the MapWriter: the flow\'s next packet is a stray', () => onOneCpu(() => {
  establish();
  h.run(pkt(TCP.ACK));
  h.writer.deleteEntries('lvs_conns', h.writer.maps.lvs_conns.entries().keys);
  const c = h.counters();
  assert.equal(h.run(pkt(TCP.ACK)).action, XDP.TX);
  assert.deepEqual(delta(c), { CONN_STRAY: 1n, FWD_DR: 1n });
}));

test('a FIN moves the entry on (never answered by the cache); a realserver deleted after caching loses the flow', () => onOneCpu(() => {
  establish();
  h.run(pkt(TCP.ACK));
  h.run(pkt(TCP.FIN | TCP.ACK));
  assert.equal(h.conns()[0]!.value[16], 3 /* LVS_CS_FIN_WAIT */);
  establish(41001);
  h.run(pkt(TCP.ACK, 41001));
  h.setReal(1, { ...RS, addr: '192.168.1.11', mac: '02:00:00:00:01:0b' });
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [1]);
  h.deleteReal(0);
  const c = h.counters();
  assert.deepEqual(h.run(pkt(TCP.ACK, 41001)).out.subarray(0, 6), mac('02:00:00:00:01:0b'));
  assert.deepEqual(delta(c), { CONN_REAL_GONE: 1n, CONN_STRAY: 1n, FWD_DR: 1n });
}));

test('the 1-s refresh still happens: a cached flow falls through to the full path once its entry is due', () => onOneCpu(() => {
  establish();
  h.run(pkt(TCP.ACK)); // cached
  const stamp = h.conns()[0]!.value.readBigUInt64LE(0);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1100); // past LVS_REFRESH_NS
  const c = h.counters();
  assert.equal(h.run(pkt(TCP.ACK)).action, XDP.TX);
  assert.ok(h.conns()[0]!.value.readBigUInt64LE(0) > stamp, 'the entry was refreshed by the full path');
  assert.deepEqual(delta(c), { CONN_HIT: 1n, FWD_DR: 1n });
}));

test('an IPv6 Tun flow: the cached flow label is the one the full path computes (byte-identical output)', () => onOneCpu(() => {
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 0x5eed, tunMtu: 1500, ttl: 64 });
  h.setReal(1, { addr: '2001:db8:1::10', mac: '02:00:00:00:06:0a', method: 'tun' }, 1, 1);
  h.setService({ proto: 'tcp', vip: '2001:db8::1', port: 80 }, 1, [1]);
  const p6 = (flags: number) => clientPacket('2001:db8:100::7', '2001:db8::1', { proto: 'tcp', sport: 42000, dport: 80, flags });
  h.run(p6(TCP.SYN));
  const full = h.run(p6(TCP.ACK)); // full path: the entry moves to ESTABLISHED and is cached
  const c = h.counters();
  const cached = h.run(p6(TCP.ACK));
  assert.equal(cached.action, XDP.TX);
  assert.deepEqual(delta(c), { CONN_HIT: 1n, FWD_TUN: 1n });
  assert.notEqual(full.out.readUInt32BE(14) & 0xfffff, 0, 'a flow label is set');
  assert.deepEqual(cached.out, full.out);
}));

test('a flow cache loaded smaller (the small preset sizes it: maxFlowcache): every flow\'s slot is one of its slots, so each established flow is answered from it', async () => {
  // 256 slots: a slot function that ignored the loaded size (16,384) would put 255 of 256
  // flows beyond the map, where the probe finds nothing and the flow goes to the full path.
  const small = await DirectorHarness.load('bpf/lvs_director.o', {}, { maxFlowcache: 256 });
  try {
    small.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1, tunMtu: 1500, ttl: 64 });
    small.setReal(0, RS);
    small.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [0]);
    const conns = small.writer.maps.lvs_conns;
    onOneCpu(() => {
      for (let sport = 42000; sport < 42032; sport++) {
        const p = (flags: number) => clientPacket(CLIENT, VIP, { proto: 'tcp', sport, dport: 80, flags });
        assert.equal(small.run(p(TCP.SYN)).action, XDP.TX);
        assert.equal(small.run(p(TCP.ACK)).action, XDP.TX); // the SYN_RECV connection entered in lvs_conns
        assert.equal(small.run(p(TCP.ACK)).action, XDP.TX); // found there: the cache filled
        // Deleted behind the control plane's back (no epoch bump): only the cache can answer.
        conns.deleteMany(conns.entries().keys);
        const c = small.counters();
        assert.equal(small.run(p(TCP.ACK)).action, XDP.TX);
        const now = small.counters();
        assert.equal(now.CONN_HIT! - c.CONN_HIT!, 1n, `flow from port ${sport}: answered by the cache`);
        assert.equal(now.CONN_STRAY, c.CONN_STRAY, `flow from port ${sport}: not a stray`);
      }
    });
  } finally {
    small.close();
  }
});
