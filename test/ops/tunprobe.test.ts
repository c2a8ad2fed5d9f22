/** The Tun forwarding-path helper's argv and its result handling (no packets: see test/e2e/ops-tun.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tunProbeArgs, tunProbeScript, probeTun } from '../../src/ops/tunprobe.js';

test('tun probe: argv for tcp and udp (payload and expect as hex), the script is found', () => {
  assert.ok(existsSync(tunProbeScript()));
  const [, , , ...tcp] = tunProbeArgs({ proto: 'tcp', rip: '203.0.113.10', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 400 });
  assert.deepEqual(tcp, ['tcp', '203.0.113.10', '198.51.100.2', '61000', '198.51.100.212', '80', '400']);
  const [, , , ...udp] = tunProbeArgs({ proto: 'udp', rip: '2001:db8::10', source: '2001:db8::2', sport: 61008, vip: '2001:db8::212', port: 53, timeoutMs: 1000, payload: 'ping', expect: 'pong' });
  assert.deepEqual(udp, ['udp', '2001:db8::10', '2001:db8::2', '61008', '2001:db8::212', '53', '1000', '70696e67', '706f6e67']);
});

test('tun probe: bad arguments and a missing interpreter are failed results, never throws', async () => {
  const bad = await probeTun({ proto: 'tcp', rip: '203.0.113.10', source: '2001:db8::2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 });
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /one family/);
  const none = await probeTun({ proto: 'tcp', rip: '203.0.113.10', source: '198.51.100.2', sport: 61000, vip: '198.51.100.212', port: 80, timeoutMs: 2000 }, '/nonexistent/python3');
  assert.equal(none.ok, false);
  assert.match(none.detail, /ENOENT/);
});
