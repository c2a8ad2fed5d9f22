// `lvs-xdp demo --ha` as a newcomer runs it (under its own prefix): three directors behind an
// ECMP router, a director dies and comes back, another is drained; every event reports 0 of 24
// connections broken, the exit code is 0 and nothing is left behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { NEEDS_ROOT } from './helpers.js';
import { cliArgv, labNamespaces, removeLab, run, testPrefix } from '../../src/lab/index.js';

const prefix = testPrefix('demoha');
after(() => {
  if (!NEEDS_ROOT) removeLab(prefix);
});

test('demo --ha: a director dies, comes back, another is drained: 0 connections broken; nothing left', { skip: NEEDS_ROOT, timeout: 240_000 }, async (t) => {
  const [node, a] = cliArgv(['demo', '--ha', '--prefix', prefix]);
  const r = await run(node, a, { timeoutMs: 200_000 });
  t.diagnostic(r.stdout);
  assert.equal(r.code, 0, `demo --ha exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /The router's route to 192\.0\.2\.10: via 198\.51\.100\.2, 198\.51\.100\.3, 198\.51\.100\.4/);
  assert.match(r.stdout, /Table digests: equal on every director/);
  assert.equal((r.stdout.match(/connections broken: 0 of 24/g) ?? []).length, 3, r.stdout);
  assert.match(r.stdout, /now: via 198\.51\.100\.2, 198\.51\.100\.3\n/);
  assert.deepEqual(labNamespaces(prefix), []);
  assert.deepEqual(readdirSync('/run/lvs-xdp').filter((f) => f.includes(`@${prefix}-`)), []);
});
