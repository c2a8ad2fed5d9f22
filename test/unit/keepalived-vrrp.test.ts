// keepalived's VRRP configuration for a director pair (src/ops/keepalived-vrrp.ts, `lvs-xdp announce
// keepalived-config`): the text, its validation, VIPs from a configuration file, and keepalived's
// own config check (`keepalived -t`) on what is generated (scripts/setup-test.sh installs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { keepalivedVrrpConfig, instancesFor, vrrpVmac, type KeepalivedVrrpOptions } from '../../src/ops/keepalived-vrrp.js';
import { keepalivedConfigFromOptions } from '../../src/cli/announce.js';
import { ConfigError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';

const base: KeepalivedVrrpOptions = {
  routerId: 'd1', interface: 'eth0', priority: 150, advertInt: 0.2, preempt: true,
  instances: instancesFor(['198.51.100.200', '2001:db8::200', '198.51.100.201', '198.51.100.200'], 51, true),
};

const keepalived = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
const NO_KEEPALIVED = keepalived.error ? 'keepalived is not installed (scripts/setup-test.sh installs it)' : false;

/** keepalived's own check of a configuration text: [exit code, messages]. */
function keepalivedCheck(text: string): [number, string] {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-keepalived-'));
  try {
    const f = join(dir, 'keepalived.conf');
    writeFileSync(f, text);
    const r = spawnSync('keepalived', ['-t', '-f', f], { encoding: 'utf8' });
    return [r.status ?? -1, `${r.stdout}${r.stderr}`];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('keepalived-config: one VRRPv3 instance per family in one sync group, both BACKUP, VIPs once, no virtual_server', () => {
  assert.deepEqual(base.instances, [
    { name: 'VI_4', vrid: 51, vmac: true, vips: ['198.51.100.200', '198.51.100.201'] },
    { name: 'VI_6', vrid: 52, vmac: true, vips: ['2001:db8::200'] },
  ]);
  const t = keepalivedVrrpConfig(base);
  assert.match(t, /^\s*vrrp_version 3\b/m);
  assert.match(t, /vrrp_sync_group LVS_XDP \{\n {2}group \{ VI_4 VI_6 \}\n\}/);
  assert.equal(t.match(/^ {2}state BACKUP$/gm)?.length, 2);
  assert.equal(t.match(/^ {2}advert_int 0.2$/gm)?.length, 2);
  assert.match(t, /use_vmac vrrp\.51 +# 00:00:5e:00:01:33/);
  assert.match(t, /use_vmac vrrp\.52 +# 00:00:5e:00:02:34/);
  assert.match(t, /virtual_ipaddress \{\n {4}198\.51\.100\.200\/32\n {4}198\.51\.100\.201\/32\n {2}\}/);
  assert.match(t, /virtual_ipaddress \{\n {4}2001:db8::200\/128\n {2}\}/);
  assert.doesNotMatch(t.replace(/#.*$/gm, ''), /virtual_server|real_server|lvs_sync_daemon/, 'keepalived moves VIPs only');
  assert.doesNotMatch(t, /nopreempt|preempt_delay/);
});

test('keepalived-config: nopreempt, preempt_delay, no vmac', () => {
  const one = instancesFor(['10.0.0.1'], 7, false);
  assert.deepEqual(one, [{ name: 'VI_4', vrid: 7, vmac: false, vips: ['10.0.0.1'] }]);
  const np = keepalivedVrrpConfig({ ...base, instances: one, preempt: false, preemptDelay: 5 });
  assert.match(np, /^ {2}nopreempt$/m);
  assert.doesNotMatch(np, /preempt_delay|use_vmac/, 'a delay means nothing without preemption');
  assert.match(keepalivedVrrpConfig({ ...base, instances: one, preemptDelay: 35 }), /^ {2}preempt_delay 35\b/m);
  assert.equal(vrrpVmac(255, 4), '00:00:5e:00:01:ff');
  assert.equal(vrrpVmac(1, 6), '00:00:5e:00:02:01');
});

test('keepalived-config: what keepalived would refuse or misread is refused', () => {
  const bad = (o: Partial<KeepalivedVrrpOptions>, re: RegExp): void => {
    assert.throws(() => keepalivedVrrpConfig({ ...base, ...o }), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  };
  bad({ priority: 255 }, /--priority: expected an integer 1-254/);
  bad({ priority: 0 }, /--priority/);
  bad({ advertInt: 0.005 }, /--advert-int: expected seconds 0\.01-40\.95/);
  bad({ advertInt: 0.125 }, /--advert-int/);
  bad({ advertInt: 41 }, /--advert-int/);
  bad({ preemptDelay: 1001 }, /--preempt-delay/);
  bad({ interface: 'eth0; rm' }, /--interface/);
  bad({ routerId: 'a b' }, /--router-id/);
  bad({ instances: [] }, /no VIP/);
  bad({ instances: instancesFor(['10.0.0.1', '2001:db8::1'], 255, false) }, /--vrid: expected an integer 1-255, got 256/);
  bad({ instances: [{ name: 'VI_4', vrid: 9, vmac: false, vips: ['10.0.0.1', '2001:db8::1'] }] }, /one family/);
  bad({ instances: [{ name: 'A', vrid: 9, vmac: false, vips: ['10.0.0.1'] }, { name: 'B', vrid: 9, vmac: false, vips: ['10.0.0.2'] }] }, /9 used twice/);
});

test('keepalived-config from options: VIPs of the file\'s services and --vip; --vrid6', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-keepalived-'));
  try {
    const f = join(dir, 'd.yaml');
    writeFileSync(f, [
      'services:',
      '  - { vip: 192.0.2.10, port: 80, scheduler: mh, realservers: [ { address: 198.51.100.101 } ] }',
      '  - { vip: 192.0.2.10, port: 443, scheduler: sh, realservers: [ { address: 198.51.100.101 } ] }',
      '  - { vip: "2001:db8:200::10", port: 80, scheduler: mh, realservers: [ { address: "2001:db8:100::101" } ] }',
      '',
    ].join('\n'));
    const t = keepalivedConfigFromOptions({ file: f, vip: ['192.0.2.11'], routerId: 'lvs-xdp', interface: 'ens1', priority: '100', vrid: '60', vrid6: '90', advertInt: '1', preempt: true, preemptDelay: '35' });
    assert.match(t, /vrrp_instance VI_4 \{[^}]*virtual_router_id 60[^}]*virtual_ipaddress \{\n {4}192\.0\.2\.10\/32\n {4}192\.0\.2\.11\/32\n/);
    assert.match(t, /vrrp_instance VI_6 \{[^}]*virtual_router_id 90[^}]*2001:db8:200::10\/128/);
    assert.match(t, /^ {2}interface ens1$/m);
    assert.match(t, /^ {2}preempt_delay 35\b/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const o = { vip: [] as string[], routerId: 'x', interface: 'eth0', priority: '100', vrid: '51', advertInt: '1', preempt: true };
  assert.throws(() => keepalivedConfigFromOptions(o), /give -f FILE/);
  assert.throws(() => keepalivedConfigFromOptions({ ...o, vip: ['10.0.0.300'] }), /--vip: expected an address/);
  assert.throws(() => keepalivedConfigFromOptions({ ...o, vip: ['10.0.0.1'], advertInt: '1s' }), /--advert-int: expected seconds/);
  assert.throws(() => keepalivedConfigFromOptions({ ...o, vip: ['10.0.0.1'], vrid: '0' }), /--vrid: expected an integer 1-255/);
});

test('keepalived -t accepts what is generated (vmac, IPv6, nopreempt, preempt_delay) and refuses a broken one', { skip: NO_KEEPALIVED }, () => {
  for (const o of [base, { ...base, preemptDelay: 3 }, { ...base, preempt: false }, { ...base, instances: instancesFor(['10.0.0.1', '2001:db8::1'], 9, false) }]) {
    const [code, out] = keepalivedCheck(keepalivedVrrpConfig(o));
    assert.equal(code, 0, out);
  }
  // The check can fail: a keyword keepalived does not know.
  const [code, out] = keepalivedCheck(keepalivedVrrpConfig(base).replace('  state BACKUP', '  stat BACKUP'));
  assert.notEqual(code, 0);
  assert.match(out, /Unknown keyword 'stat'/);
});

test('README: the keepalived-config example is what the command prints', () => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Active/standby with keepalived (VRRP)'));
  const block = /\n```\n(global_defs \{[\s\S]*?)```\n/.exec(section);
  assert.ok(block, 'the example block');
  const printed = keepalivedConfigFromOptions({ file: 'lb.yaml', vip: [], routerId: 'lvs-xdp', interface: 'eth0', priority: '150', vrid: '51', advertInt: '0.2', useVmac: true, preempt: true, preemptDelay: '35' },
    () => ['192.0.2.10', '2001:db8:200::10']).split('\n');
  // Every line shown (the elided instance aside) is printed, in the same order.
  let at = 0;
  for (const line of block[1]!.split('\n').filter((l) => l && !l.includes('...'))) {
    const i = printed.indexOf(line, at);
    assert.ok(i >= 0, `README line not printed (in order): ${JSON.stringify(line)}`);
    at = i + 1;
  }
});
