/** The README's health-check example (section "Operations") parses and plans. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfigText } from '../../src/config/index.js';
import { healthPlan } from '../../src/ops/spec.js';

test('README Operations: the health-check example is a valid file', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Health checks'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'yaml block under "### Health checks"');
  const plan = healthPlan(parseConfigText(block[1]!, 'README.md'));
  assert.deepEqual(plan.targets.map((t) => [t.address, t.spec.type, t.spec.port]), [
    ['192.168.1.10', 'http', 80], ['192.168.1.11', 'tcp', 8080], ['192.168.1.10', 'udp', 53], ['192.168.1.12', 'exec', 443],
  ]);
  assert.equal(plan.policies.get('tcp 10.0.0.1:80')!.allDown, 'sorry-server');
});
