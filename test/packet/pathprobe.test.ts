/** The forwarding-path helper's argv and its result handling (packets: test/e2e/ops-tun.test.ts, ops.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pathProbeArgs, pathProbeScript, probePath } from '../../src/ops/pathprobe.js';

test('path probe: argv for tun and dr, tcp and udp (payload and expect as hex), the script is found', () => {
  assert.ok(existsSync(pathProbeScript()));
  const [, , , ...tcp] = pathProbeArgs({ mode: 'tun', proto: 'tcp', dev: 'eth0', rip: '203.0.113.10', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 400 });
  assert.deepEqual(tcp, ['tun', 'tcp', 'eth0', '203.0.113.10', '-', '198.51.100.2', '61000', '198.51.100.212', '80', '400']);
  const [, , , ...udp] = pathProbeArgs({ mode: 'dr', proto: 'udp', dev: 'eth1', rip: '2001:db8::10', mac: '02:00:00:00:00:10', source: '2001:db8::2', sport: 61008, vip: '2001:db8::212', port: 53, timeoutMs: 1000, payload: 'ping', expect: 'pong' });
  assert.deepEqual(udp, ['dr', 'udp', 'eth1', '2001:db8::10', '02:00:00:00:00:10', '2001:db8::2', '61008', '2001:db8::212', '53', '1000', '70696e67', '706f6e67']);
});

test('path probe: bad arguments and a missing interpreter are failed results, never throws', async () => {
  const bad = await probePath({ mode: 'tun', proto: 'tcp', dev: 'lo', rip: '203.0.113.10', source: '2001:db8::2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 });
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /one family/);
  const noMac = await probePath({ mode: 'dr', proto: 'tcp', dev: 'lo', rip: '203.0.113.10', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 });
  assert.equal(noMac.ok, false);
  assert.match(noMac.detail, /bad argument/);
  const noDev = await probePath({ mode: 'dr', proto: 'tcp', dev: 'nosuchdev0', rip: '203.0.113.10', mac: '02:00:00:00:00:01', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 });
  assert.equal(noDev.ok, false);
  assert.match(noDev.detail, /socket on nosuchdev0/);
  const none = await probePath({ mode: 'tun', proto: 'tcp', dev: 'lo', rip: '203.0.113.10', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 }, '/nonexistent/python3');
  assert.equal(none.ok, false);
  assert.match(none.detail, /ENOENT/);
});

test('path probe: the capture filter keeps packets from the VIP and ICMP, nothing else (on lo)', { skip: process.getuid?.() !== 0 && 'needs root (AF_PACKET)' }, () => {
  // Loads path-probe.py as a module and watches lo: a datagram from 127.0.0.1 is dropped by
  // the filter (the ICMP port unreachable it causes is kept), one from the VIP is kept.
  const script = `
import importlib.util, socket, ipaddress, select, sys
spec = importlib.util.spec_from_file_location('pp', sys.argv[1]); pp = importlib.util.module_from_spec(spec); spec.loader.exec_module(pp)
rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(pp.ETH_P_ALL))
pp.attach_filter(rx, ipaddress.ip_address('127.0.0.5')); rx.bind(('lo', pp.ETH_P_ALL))
while select.select([rx], [], [], 0.2)[0]: rx.recv(65535)
def seen():
    out = []
    while select.select([rx], [], [], 0.3)[0]:
        d = rx.recv(65535); out.append((d[9], str(ipaddress.ip_address(d[12:16]))))
    return out
for src in ('127.0.0.1', '127.0.0.5'):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 0)); s.sendto(b'x', ('127.0.0.1', 9))
    print(src, sorted(set(seen())))
`;
  const r = spawnSync('python3', ['-c', script, pathProbeScript()], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [fromOther, fromVip] = r.stdout.trim().split('\n');
  assert.doesNotMatch(fromOther!, /\(17, /, 'the datagram from elsewhere is filtered out');
  assert.match(fromOther!, /\(1, '127\.0\.0\.1'\)/, 'the ICMP error it caused is kept');
  assert.match(fromVip!, /\(17, '127\.0\.0\.5'\)/, 'the datagram from the VIP');
});
