// The README's config example parses and validates: the documentation stays true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfigText } from '../../src/config/index.js';
import { compileDirector } from '../../src/dataplane/compile.js';

test('README config example parses and compiles', () => {
  const readme = readFileSync('README.md', 'utf8');
  const block = /<!-- config-example:begin -->\n```yaml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'example block present');
  const cfg = parseConfigText(block[1]!, 'README.md');
  assert.equal(cfg.services.length, 3);
  assert.equal(cfg.services[2]!.fwmark, 1);
  assert.deepEqual(cfg.marks!.map((m) => m.match.length), [2]);
  assert.equal(cfg.services[0]!.realservers[2]!.weight, 0);
  const c = compileDirector(cfg, () => ({ mac: '02:00:00:00:00:99' }), { maxServices: 8, maxReals: 16, maxTableSize: 131071 });
  assert.equal(c.services[0]!.table.length, 4093);
  assert.equal(c.marks.length, 2);
});
