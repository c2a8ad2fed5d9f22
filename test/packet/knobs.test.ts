// Load-time knobs (.rodata): switched-off features behave as documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';

const cfg = { tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1, tunMtu: 1500, ttl: 64 };

test('cfg_enable_ipv6=0: IPv6 passes untouched, counted pass_family_disabled', async () => {
  const h = await DirectorHarness.load('bpf/lvs_director.o', { cfg_enable_ipv6: 0 });
  try {
    h.reset();
    h.setCfg(cfg);
    h.setReal(0, { addr: '2001:db8:1::10', mac: '02:00:00:00:00:0a', method: 'dr' });
    h.setService({ proto: 'tcp', vip: '2001:db8::1', port: 80 }, 0, [0]);
    const f = clientPacket('2001:db8:100::7', '2001:db8::1', { proto: 'tcp', sport: 1, dport: 80, flags: TCP.SYN });
    const r = h.run(f);
    assert.equal(r.action, XDP.PASS);
    assert.deepEqual(r.out, f);
    assert.equal(h.counters().PASS_FAMILY_DISABLED, 1n);
  } finally {
    h.close();
  }
});

test('cfg_enable_tun=0: a Tun realserver is dropped, counted drop_tun_disabled', async () => {
  const h = await DirectorHarness.load('bpf/lvs_director.o', { cfg_enable_tun: 0 });
  try {
    h.reset();
    h.setCfg(cfg);
    h.setReal(0, { addr: '192.168.1.10', mac: '02:00:00:00:00:0a', method: 'tun' });
    h.setService({ proto: 'tcp', vip: '10.0.0.1', port: 80 }, 0, [0]);
    const r = h.run(clientPacket('198.51.100.7', '10.0.0.1', { proto: 'tcp', sport: 1, dport: 80 }));
    assert.equal(r.action, XDP.DROP);
    assert.equal(h.counters().DROP_TUN_DISABLED, 1n);
  } finally {
    h.close();
  }
});

test('cfg_enable_frag=0: non-first fragments pass, first fragments are not tracked', async () => {
  const h = await DirectorHarness.load('bpf/lvs_director.o', { cfg_enable_frag: 0 });
  try {
    h.reset();
    h.setCfg(cfg);
    h.setReal(0, { addr: '192.168.1.10', mac: '02:00:00:00:00:0a', method: 'dr' });
    h.setService({ proto: 'udp', vip: '10.0.0.1', port: 53 }, 0, [0]);
    const first = clientPacket('198.51.100.7', '10.0.0.1', { proto: 'udp', sport: 1, dport: 53 }, { mf: true, df: false, id: 5 });
    assert.equal(h.run(first).action, XDP.TX);
    assert.equal(h.counters().FRAG_FIRST, 0n);
  } finally {
    h.close();
  }
});
