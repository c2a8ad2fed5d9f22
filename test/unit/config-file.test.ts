/** Configuration files: YAML/JSON versus ipvsadm rule files, told apart by content, and what each asks for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readConfigFile, readConfigFileKind, desiredConfig, looksLikeIpvsadm } from '../../src/config/file.js';
import { formatSave } from '../../src/ipvsadm/index.js';
import { ConfigError } from '../../src/errors.js';

const dir = fileURLToPath(new URL('../../../test/fixtures/config/', import.meta.url));

test('a YAML file is the whole configuration; its ipvsadm save reads back as rules with the same services', () => {
  const yaml = readConfigFileKind(`${dir}good.yaml`);
  assert.equal(yaml.rules, false);
  assert.equal(yaml.config.settings?.hashSeed, 12345);
  const rules = readConfigFileKind(`${dir}good.save`);
  assert.equal(rules.rules, true);
  assert.equal(rules.config.settings, undefined);
  assert.equal(formatSave(rules.config), readFileSync(`${dir}good.save`, 'utf8'));
  assert.equal(formatSave(rules.config), formatSave(yaml.config));
  assert.equal(readConfigFile(`${dir}good.json`).services[0]!.scheduler, 'wrr');
  // Running settings survive a rules file (ipvsadm -R after -C), not a YAML one.
  assert.deepEqual(desiredConfig(rules, yaml.config).settings, yaml.config.settings);
  assert.deepEqual(desiredConfig(yaml, { services: [], settings: { hashSeed: 1 } }), yaml.config);
});

test('an unreadable file is a ConfigError naming the file and the errno', () => {
  assert.throws(() => readConfigFile(`${dir}missing.yaml`),
    (e: unknown) => e instanceof ConfigError && /cannot read .*missing\.yaml: ENOENT/.test(e.message));
});

test('a rules file keeps the running settings (it cannot express them); a YAML file is the whole configuration', () => {
  const running = { services: [], settings: { hashSeed: 7, timeouts: { tcp: 1000 } } };
  const fromFile = { services: [] };
  assert.deepEqual(desiredConfig({ config: fromFile, rules: true }, running), { services: [], settings: running.settings });
  assert.deepEqual(desiredConfig({ config: fromFile, rules: false }, running), fromFile);
  assert.deepEqual(desiredConfig({ config: fromFile, rules: true }, { services: [] }), fromFile);
});

test('file kind: ipvsadm rules versus YAML/JSON', () => {
  assert.equal(looksLikeIpvsadm('# saved\n\n-A -t 10.0.0.1:80 -s mh\n'), true);
  assert.equal(looksLikeIpvsadm('ipvsadm -A -t 10.0.0.1:80 -s mh\n'), true);
  assert.equal(looksLikeIpvsadm('services:\n  - vip: 10.0.0.1\n'), false);
  assert.equal(looksLikeIpvsadm('{"services": []}'), false);
  assert.equal(looksLikeIpvsadm(''), false);
});

