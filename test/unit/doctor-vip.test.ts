// doctor's address arithmetic (src/cli/doctor-vip.ts): whether a VIP lies in an interface's
// subnet decides whether the director must answer ARP / ND for it on that link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inPrefix } from '../../src/cli/doctor-vip.js';

test('inPrefix: IPv4 and IPv6, bit-exact at the prefix boundary, families never mix', () => {
  assert.ok(inPrefix('198.51.100.200', '198.51.100.2', 24));
  assert.ok(!inPrefix('198.51.101.200', '198.51.100.2', 24));
  assert.ok(inPrefix('10.0.0.127', '10.0.0.1', 25));
  assert.ok(!inPrefix('10.0.0.128', '10.0.0.1', 25));
  assert.ok(inPrefix('10.1.2.3', '192.0.2.1', 0));
  assert.ok(inPrefix('2001:db8:100::200', '2001:db8:100::2', 64));
  assert.ok(!inPrefix('2001:db8:101::200', '2001:db8:100::2', 64));
  assert.ok(inPrefix('2001:db8::1:0', '2001:db8::', 111));
  assert.ok(!inPrefix('2001:db8::2:0', '2001:db8::', 111));
  assert.ok(!inPrefix('10.0.0.1', '::', 0));
  assert.ok(!inPrefix('not-an-address', '10.0.0.0', 8));
});
