/**
 * `lvs-xdp diff -f OUT` on what `lvs-xdp import keepalived` wrote, on a director attached in a
 * namespace of the test's own (a veth pair, nothing else): every Debian sample
 * (/usr/share/doc/keepalived/samples/, default and --nat-as dr) and the DR fixture produce a file
 * the running director accepts as a change. The fixture and two samples go through the CLI's
 * import; the other samples are imported in-process (each CLI call is a process: the machine's
 * time goes to the diffs of the files that hold services).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliNamespace } from '../lib/cli-ns.js';
import { repoRoot } from '../lib/paths.js';
import { importKeepalived } from '../../src/import/keepalived/index.js';

const SAMPLES = '/usr/share/doc/keepalived/samples';
const L = new CliNamespace('lvsimp');
let dir = '';

before(() => {
  L.create();
  L.ip('link', 'add', 'imp0', 'type', 'veth', 'peer', 'name', 'imp1');
  L.ip('link', 'set', 'imp0', 'up');
  L.ip('link', 'set', 'imp1', 'up');
  L.ok(['attach', 'imp0', '--preset', 'small']);
  dir = mkdtempSync(join(tmpdir(), 'lvs-import-'));
});

after(() => {
  L.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Imports (with the CLI, or in-process) and diffs; returns the number of services in the file and the diff's text. */
function importAndDiff(file: string, extra: string[] = [], cli = true): { services: number; diff: string } {
  const out = join(dir, `${file.replace(/\W/g, '_')}${extra.join('')}.yaml`);
  let services: number;
  if (cli) {
    const imp = L.check(['import', 'keepalived', file, '-o', out, '--config-id', 'none', ...extra]);
    const m = /imported (\d+) service\(s\)/.exec(imp.stderr);
    assert.ok(m, imp.stderr);
    services = Number(m[1]);
  } else {
    const r = importKeepalived(file, { configId: 'none', ...(extra[0] === '--nat-as' ? { natAs: extra[1] as 'dr' } : {}) });
    writeFileSync(out, r.text);
    services = r.config.services.length;
  }
  const diff = L.run(['diff', '-f', out]);
  assert.equal(diff.code, 0, `diff -f of the import of ${file} ${extra.join(' ')}: ${diff.stderr}`);
  return { services, diff: diff.stdout };
}

test('every Debian sample, as it is and with --nat-as dr, validates with lvs-xdp diff -f', () => {
  assert.ok(existsSync(SAMPLES), `${SAMPLES} is missing: bash scripts/setup-test.sh installs keepalived`);
  const names = readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')).sort();
  assert.ok(names.length >= 20);
  let carried = 0;
  for (const name of names) {
    const cli = name === 'keepalived.conf.quorum' || name === 'keepalived.conf.vrrp';
    // As it is, every sample imports to `services: []` (LVS-NAT, fwmark or VRRP only; the unit
    // test reads each back): the director is asked about two of them.
    const plain = cli ? importAndDiff(join(SAMPLES, name), [], true) : { services: importKeepalived(join(SAMPLES, name), { configId: 'none' }).config.services.length, diff: 'no changes' };
    assert.equal(plain.services, 0, `${name}: every sample is LVS-NAT, fwmark or VRRP only`);
    assert.equal(plain.diff.trim(), 'no changes');
    const dr = importAndDiff(join(SAMPLES, name), ['--nat-as', 'dr'], cli);
    if (dr.services > 0) {
      carried++;
      assert.match(dr.diff, new RegExp(`^${dr.services} service\\(s\\) added, 0 removed`, 'm'), `${name}: the diff adds its services`);
    }
  }
  assert.ok(carried >= 14, `${carried} samples carried over with --nat-as dr`);
});

test('the DR fixture: six services that diff adds, with their realservers', () => {
  const r = importAndDiff(join(repoRoot(), 'test/fixtures/keepalived/dr/keepalived.conf'));
  assert.equal(r.services, 6);
  assert.equal(r.diff, [
    '+ service tcp 203.0.113.10:80 (wrr, 3 realservers)', '    + realserver 10.1.0.11 (dr, weight 3)', '    + realserver 10.1.0.12 (dr, weight 1)', '    + realserver 10.1.0.13 (dr, weight 2)',
    '+ service tcp 203.0.113.10:443 (sh, 2 realservers)', '    + realserver 10.1.0.11 (dr, weight 1)', '    + realserver 10.1.0.12 (dr, weight 1)',
    '+ service tcp 203.0.113.30:8443 (mh, 1 realserver)', '    + realserver 10.1.0.31 (dr, weight 1)',
    '+ service tcp [2001:db8:10::10]:80 (wrr, 1 realserver)', '    + realserver 2001:db8:20::11 (dr, weight 5)',
    '+ service tcp [2001:db8:10::11]:80 (wrr, 1 realserver)', '    + realserver 2001:db8:20::11 (dr, weight 5)',
    '+ service udp 203.0.113.53:53 (rr, 2 realservers)', '    + realserver 192.0.2.21 (tun, weight 1)', '    + realserver 192.0.2.22 (tun, weight 1)',
    '6 service(s) added, 0 removed, 0 edited; 10 realserver(s) added, 0 removed, 0 edited.', '',
  ].join('\n'));
});
