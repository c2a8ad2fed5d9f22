import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { COUNTERS } from '../../src/abi/generated.js';

const run = (...args: string[]) => execFileSync('node', ['bin/lvs-xdp.js', ...args], { encoding: 'utf8' });

test('lvs-xdp --version and counters (text and --json) run from the built CLI', () => {
  assert.match(run('--version'), /^\d+\.\d+\.\d+/);
  const text = run('counters');
  assert.equal(text.trim().split('\n').length, COUNTERS.length);
  assert.match(text, /^pass_not_ip\s+pass\s+not IPv4 or IPv6/m);
  const json = JSON.parse(run('counters', '--json')) as { name: string; index: number }[];
  assert.deepEqual(json.map((c) => c.name), COUNTERS.map((c) => c.name.toLowerCase()));
});
