// DR to a realserver behind another interface: XDP_REDIRECT through lvs_tx_ports, with the
// egress interface's MAC as source. Needs a real interface: a veth pair made and removed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { clientPacket, TCP, mac } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { native } from '../../src/native/testing.js';

test('DR realserver behind another interface is reached by XDP_REDIRECT', async () => {
  const a = `lvr${process.pid % 100000}a`;
  const b = `lvr${process.pid % 100000}b`;
  execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  const h = await DirectorHarness.load();
  try {
    execFileSync('ip', ['link', 'set', a, 'up']);
    execFileSync('ip', ['link', 'set', b, 'up']);
    const ifindex = native().ifNameToIndex(a);
    h.reset();
    h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '::1', seed: 1, tunMtu: 1500, ttl: 64 });
    h.setTxPort(ifindex);
    h.setReal(0, { addr: '192.168.2.10', mac: '02:00:00:00:02:0a', method: 'dr', ifindex, smac: '02:00:00:00:02:01' });
    h.setService({ proto: 'tcp', vip: '10.0.0.1', port: 80 }, 0, [0]);
    const f = clientPacket('198.51.100.7', '10.0.0.1', { proto: 'tcp', sport: 1, dport: 80, flags: TCP.SYN });
    const r = h.run(f);
    assert.equal(r.action, XDP.REDIRECT);
    assert.deepEqual(r.out.subarray(0, 6), mac('02:00:00:00:02:0a'));
    assert.deepEqual(r.out.subarray(6, 12), mac('02:00:00:00:02:01'));
    assert.deepEqual(r.out.subarray(12), f.subarray(12));
    const c = h.counters();
    assert.equal(c.FWD_DR, 1n);
    assert.equal(c.FWD_REDIRECT, 1n);

    h.setReal(0, { addr: '192.168.2.10', mac: '02:00:00:00:02:0a', method: 'dr', ifindex: ifindex + 1000, smac: '02:00:00:00:02:01' });
    assert.equal(h.run(f).action, XDP.DROP, 'egress interface not in lvs_tx_ports');
    assert.equal(h.counters().DROP_REDIRECT_FAILED, 1n);
  } finally {
    h.close();
    execFileSync('ip', ['link', 'del', a]);
  }
});
