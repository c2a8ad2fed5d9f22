/** Forwarding-path routing (policy rule + route per checked realserver) against a fake `ip`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForwardingRoutes } from '../../src/ops/forwarding.js';
import type { Target } from '../../src/ops/spec.js';

function target(address: string, over: Partial<Target['spec']> = {}, vip = '10.0.0.1'): Target {
  return {
    key: `tcp ${vip}:80/${address}`, service: `tcp ${vip}:80`, vip, vport: 80, protocol: 'tcp', address, method: 'dr',
    spec: { type: 'tcp', port: 80, intervalMs: 1000, timeoutMs: 500, rise: 1, fall: 1, initial: 'up', via: 'forwarding', onDown: 'finish', path: '/', expectStatus: [], tlsVerify: false, payload: '', ...over },
  };
}

function fakeIp(opts: { leftovers?: { priority: number; table: string }[]; local?: string[]; gateway?: Record<string, string> } = {}) {
  const calls: string[] = [];
  const exec = (args: string[]): string => {
    const line = args.join(' ');
    calls.push(line);
    if (line === '-j -4 rule show') return JSON.stringify([{ priority: 0, table: 'local' }, ...(opts.leftovers ?? []), { priority: 32766, table: 'main' }]);
    if (line === '-j -6 rule show') return '[]';
    let m = /^-j -[46] route get (\S+)$/.exec(line);
    if (m) {
      const gw = opts.gateway?.[m[1]!];
      return JSON.stringify([{ dst: m[1], dev: 'eth0', prefsrc: '192.168.1.2', ...(gw ? { gateway: gw } : {}) }]);
    }
    m = /^-j -[46] route show table local (\S+)$/.exec(line);
    if (m) return (opts.local ?? []).includes(m[1]!) ? JSON.stringify([{ type: 'local', dst: m[1] }]) : '[]';
    if (/ rule del pref /.test(line) && !calls.slice(0, -1).some((c) => c.includes(`rule add pref ${line.split(' ').pop()}`)) && !(opts.leftovers ?? []).some((l) => line.endsWith(String(l.priority)))) {
      throw Object.assign(new Error('no such rule'), { stderr: 'RTNETLINK answers: No such file or directory' });
    }
    return '';
  };
  return { calls, exec };
}

test('one rule and route per forwarding-path target; ports rotate in its block; direct checks get none', async () => {
  const local: string[] = [];
  const ip = fakeIp({ local });
  const f = new ForwardingRoutes({}, ip.exec);
  f.sync([target('192.168.1.10'), target('192.168.1.11', { type: 'udp' }), target('192.168.1.12', { via: 'direct' })]);
  assert.ok(ip.calls.includes('-4 route replace 10.0.0.1/32 via 192.168.1.10 dev eth0 onlink table 19500'));
  assert.ok(ip.calls.includes('-4 rule add pref 19500 from 192.168.1.2 ipproto tcp sport 61000-61007 table 19500'));
  assert.ok(ip.calls.includes('-4 route replace 10.0.0.1/32 via 192.168.1.11 dev eth0 onlink table 19501'));
  assert.ok(ip.calls.includes('-4 rule add pref 19501 from 192.168.1.2 ipproto udp sport 61008-61015 table 19501'));
  assert.ok(!ip.calls.some((c) => c.includes('192.168.1.12')));
  const t = target('192.168.1.10');
  const ports = [] as number[];
  for (let i = 0; i < 9; i++) ports.push(((await f.endpoint(t)) as { localPort: number }).localPort);
  assert.deepEqual(ports, [61000, 61001, 61002, 61003, 61004, 61005, 61006, 61007, 61000]);
  assert.deepEqual(await f.endpoint(t), { localAddress: '192.168.1.2', localPort: 61001, dev: 'eth0', raw: false }, 'a kernel socket through the policy route');
  // The VIP made local meanwhile: the cached answer stays for a while, a fresh look sees it.
  local.push('10.0.0.1');
  assert.equal(((await f.endpoint(t)) as { raw: boolean }).raw, false, 'cached');
  assert.equal(await f.vipIsLocalNow('10.0.0.1'), true);
  assert.equal(((await f.endpoint(t)) as { raw: boolean }).raw, true);
});

test('sync removes what is no longer wanted and reuses its slot; clear removes leftovers of a killed run', async () => {
  const ip = fakeIp({ leftovers: [{ priority: 19507, table: '19507' }, { priority: 100, table: '100' }] });
  const f = new ForwardingRoutes({}, ip.exec);
  f.clear();
  assert.ok(ip.calls.includes('-4 rule del pref 19507'));
  assert.ok(ip.calls.includes('-4 route flush table 19507'));
  assert.ok(!ip.calls.includes('-4 rule del pref 100'), 'rules outside the range are not ours');
  f.sync([target('192.168.1.10'), target('192.168.1.11')]);
  ip.calls.length = 0;
  f.sync([target('192.168.1.11'), target('192.168.1.13')]);
  assert.ok(ip.calls.includes('-4 rule del pref 19500'));
  assert.ok(ip.calls.includes('-4 route flush table 19500'));
  assert.ok(ip.calls.includes('-4 rule add pref 19500 from 192.168.1.2 ipproto tcp sport 61000-61007 table 19500'), ip.calls.join('\n'));
  assert.ok(!ip.calls.some((c) => c.includes('via 192.168.1.11')), 'an unchanged target is left alone');
  assert.deepEqual(f.list.map((r) => [r.key, r.table]), [['tcp 10.0.0.1:80/192.168.1.11', 19501], ['tcp 10.0.0.1:80/192.168.1.13', 19500]]);
});

test('problems: realserver not on-link, no free slot; a VIP local on the director makes the probe raw', async () => {
  const ip = fakeIp({ local: ['10.0.0.9'], gateway: { '192.168.7.7': '192.168.1.1' } });
  const f = new ForwardingRoutes({ slots: 2 }, ip.exec);
  f.sync([target('192.168.7.7'), target('192.168.1.10', {}, '10.0.0.9'), target('192.168.1.11'), target('192.168.1.12')]);
  assert.match(((await f.endpoint(target('192.168.7.7'))) as { problem: string }).problem, /not on a link/);
  assert.deepEqual(await f.endpoint(target('192.168.1.10', {}, '10.0.0.9')), { localAddress: '192.168.1.2', localPort: 61008, dev: 'eth0', raw: true });
  assert.match(((await f.endpoint(target('192.168.1.12'))) as { problem: string }).problem, /no free forwarding-path slot/);
});

test('LVS-Tun targets: a port block and the source toward the realserver, no rule or route (the probe encapsulates itself)', async () => {
  const ip = fakeIp({ gateway: { '203.0.113.10': '192.168.1.1' }, local: ['10.0.0.9'] });
  const f = new ForwardingRoutes({}, ip.exec);
  const tun = { ...target('203.0.113.10'), method: 'tun' as const };
  f.sync([tun, target('192.168.1.11')]);
  assert.ok(!ip.calls.some((c) => c.includes('203.0.113.10') && /rule add|route replace/.test(c)), ip.calls.join('\n'));
  assert.deepEqual(await f.endpoint(tun), { localAddress: '192.168.1.2', localPort: 61000, dev: 'eth0', raw: true }, 'behind a router is fine for Tun');
  assert.deepEqual(f.list.find((r) => r.key === tun.key), { key: tun.key, source: '192.168.1.2', ports: [61000, 61007], table: 19500, family: 4, tun: true });
  // Removing it touches no rule; a DR target then reusing the slot gets its rule.
  ip.calls.length = 0;
  f.sync([target('192.168.1.11')]);
  assert.ok(!ip.calls.some((c) => c.includes('19500')), ip.calls.join('\n'));
  const tunLocal = { ...target('203.0.113.10', {}, '10.0.0.9'), method: 'tun' as const };
  f.sync([tunLocal]);
  assert.deepEqual(await f.endpoint(tunLocal), { localAddress: '192.168.1.2', localPort: 61000, dev: 'eth0', raw: true }, 'a local VIP is fine: the answer is read off the interface');
});
