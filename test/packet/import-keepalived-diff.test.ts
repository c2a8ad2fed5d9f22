/**
 * `lvs-xdp diff -f OUT` on what `lvs-xdp import keepalived` wrote, on a director attached in a
 * namespace of the test's own (a veth pair, nothing else): every Debian sample
 * (/usr/share/doc/keepalived/samples/, as it is: LVS-NAT, and --nat-as dr) and the DR and LVS-NAT
 * fixtures produce a file the running director accepts as a change; the LVS-NAT fixture is
 * applied and read back as ipvsadm -S rules (NAT ports, thresholds, firewall-mark services). The
 * fixtures and two samples go through the CLI's import; the other samples are imported in-process
 * (each CLI call is a process: the machine's time goes to the diffs).
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
  L.veth('imp0', 'imp1');
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

test('every Debian sample, as it is (LVS-NAT) and with --nat-as dr, validates with lvs-xdp diff -f', () => {
  assert.ok(existsSync(SAMPLES), `${SAMPLES} is missing: bash scripts/setup-test.sh installs keepalived`);
  const names = readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')).sort();
  assert.ok(names.length >= 20);
  const carried = { plain: 0, dr: 0 };
  for (const name of names) {
    const cli = name === 'keepalived.conf.quorum' || name === 'keepalived.conf.vrrp';
    for (const [kind, extra] of [['plain', []], ['dr', ['--nat-as', 'dr']]] as const) {
      const r = importAndDiff(join(SAMPLES, name), [...extra], cli);
      if (r.services === 0) {
        assert.equal(r.diff.trim(), 'no changes', `${name} ${kind}`);
        continue;
      }
      carried[kind]++;
      assert.match(r.diff, new RegExp(`^${r.services} service\\(s\\) added, 0 removed`, 'm'), `${name} ${kind}: the diff adds its services`);
      // As it is, the realservers are LVS-NAT; with --nat-as dr, DR.
      const methods = new Set([...r.diff.matchAll(/\+ realserver \S+ \((\w+),/g)].map((m) => m[1]));
      assert.deepEqual([...methods], [kind === 'plain' ? 'nat' : 'dr'], `${name} ${kind}: ${r.diff}`);
    }
  }
  // Every sample with a virtual_server but the fwmark one (LVS-NAT there: reported) as it is; all with --nat-as dr.
  assert.ok(carried.plain >= 14, `${carried.plain} samples carried over as they are`);
  assert.equal(carried.dr, carried.plain + 1);
});

test('the DR fixture: eight services (an LVS-NAT one, a firewall-mark one) that diff adds, with their realservers', () => {
  const r = importAndDiff(join(repoRoot(), 'test/fixtures/keepalived/dr/keepalived.conf'));
  assert.equal(r.services, 8);
  assert.equal(r.diff, [
    '+ service tcp 203.0.113.10:80 (wrr, 3 realservers)', '    + realserver 10.1.0.11 (dr, weight 3)', '    + realserver 10.1.0.12 (dr, weight 1)', '    + realserver 10.1.0.13 (dr, weight 2)',
    '+ service tcp 203.0.113.10:443 (sh, 2 realservers)', '    + realserver 10.1.0.11 (dr, weight 1)', '    + realserver 10.1.0.12 (dr, weight 1)',
    '+ service tcp 203.0.113.20:25 (rr, 1 realserver)', '    + realserver 10.2.0.25 (nat, weight 1)',
    '+ service tcp 203.0.113.30:8443 (mh, 1 realserver)', '    + realserver 10.1.0.31 (dr, weight 1)',
    '+ service tcp [2001:db8:10::10]:80 (wlc, 1 realserver)', '    + realserver 2001:db8:20::11 (dr, weight 5)',
    '+ service tcp [2001:db8:10::11]:80 (wlc, 1 realserver)', '    + realserver 2001:db8:20::11 (dr, weight 5)',
    '+ service udp 203.0.113.53:53 (rr, 2 realservers)', '    + realserver 192.0.2.21 (tun, weight 1)', '    + realserver 192.0.2.22 (tun, weight 1)',
    '+ service fwm 7 (rr, 1 realserver)', '    + realserver 10.1.0.11 (dr, weight 1)',
    '8 service(s) added, 0 removed, 0 edited; 12 realserver(s) added, 0 removed, 0 edited.', '',
  ].join('\n'));
});

test('the LVS-NAT fixture: seven services (two firewall-mark ones) that diff adds, NAT realservers with their own ports', () => {
  const r = importAndDiff(join(repoRoot(), 'test/fixtures/keepalived/nat/keepalived.conf'));
  assert.equal(r.services, 7);
  assert.equal(r.diff, [
    '+ service tcp 198.51.100.10:80 (wlc, 2 realservers)', '    + realserver 10.2.0.11 (nat, weight 3)', '    + realserver 10.2.0.12 (nat, weight 1)',
    '+ service tcp 198.51.100.10:443 (wlc, 1 realserver)', '    + realserver 10.2.0.11 (nat, weight 1)',
    '+ service tcp 198.51.100.30:3306 (wlc, 1 realserver)', '    + realserver 10.2.0.31 (nat, weight 1)',
    '+ service tcp [2001:db8:51::10]:80 (fo, 2 realservers)', '    + realserver 2001:db8:52::11 (tun, weight 10)', '    + realserver 2001:db8:52::12 (tun, weight 5)',
    '+ service udp 198.51.100.20:53 (sed, 2 realservers)', '    + realserver 10.2.0.21 (nat, weight 2)', '    + realserver 10.2.0.22 (nat, weight 1)',
    '+ service fwm 10 (nq, 2 realservers)', '    + realserver 10.2.0.11 (dr, weight 2)', '    + realserver 10.2.0.12 (dr, weight 1)',
    '+ service fwm 11 ipv6 (fo, 2 realservers)', '    + realserver 2001:db8:52::11 (tun, weight 10)', '    + realserver 2001:db8:52::12 (tun, weight 5)',
    '7 service(s) added, 0 removed, 0 edited; 12 realserver(s) added, 0 removed, 0 edited.', '',
  ].join('\n'));
  // Applied, the director holds the NAT ports and the thresholds (ipvsadm -S's rules).
  const out = join(dir, 'nat-fixture.yaml');
  writeFileSync(out, importKeepalived(join(repoRoot(), 'test/fixtures/keepalived/nat/keepalived.conf'), { configId: 'lb1' }).text);
  // Applying resolves each realserver's next hop: the realservers' networks on imp0, with permanent neighbours.
  L.ip('addr', 'add', '10.2.0.1/24', 'dev', 'imp0');
  L.ip('-6', 'addr', 'add', '2001:db8:52::1/64', 'dev', 'imp0', 'nodad');
  ['10.2.0.11', '10.2.0.12', '10.2.0.21', '10.2.0.22', '10.2.0.31', '2001:db8:52::11', '2001:db8:52::12'].forEach((a, i) =>
    L.ip('neigh', 'replace', a, 'lladdr', `02:00:00:00:01:${String(i + 10)}`, 'dev', 'imp0', 'nud', 'permanent'));
  L.ok(['apply', '-f', out]);
  try {
    assert.equal(L.check(['-S', '-n']).stdout, [
      '-A -t 198.51.100.10:80 -s wlc', '-a -t 198.51.100.10:80 -r 10.2.0.11:8080 -m -w 3 -x 500 -y 400', '-a -t 198.51.100.10:80 -r 10.2.0.12:8081 -m -w 1 -x 200',
      '-A -t 198.51.100.10:443 -s wlc', '-a -t 198.51.100.10:443 -r 10.2.0.11:8443 -m -w 1',
      '-A -t 198.51.100.30:3306 -s wlc', '-a -t 198.51.100.30:3306 -r 10.2.0.31:3306 -m -w 1',
      '-A -t [2001:db8:51::10]:80 -s fo', '-a -t [2001:db8:51::10]:80 -r [2001:db8:52::11]:80 -i -w 10 --tun-type ipip', '-a -t [2001:db8:51::10]:80 -r [2001:db8:52::12]:80 -i -w 5 --tun-type ipip',
      '-A -u 198.51.100.20:53 -s sed -o', '-a -u 198.51.100.20:53 -r 10.2.0.21:5353 -m -w 2', '-a -u 198.51.100.20:53 -r 10.2.0.22:5353 -m -w 1',
      '-A -f 10 -s nq -p 600', '-a -f 10 -r 10.2.0.11:0 -g -w 2 -x 1000', '-a -f 10 -r 10.2.0.12:0 -g -w 1',
      '-A -f 11 -6 -s fo', '-a -f 11 -6 -r [2001:db8:52::11]:80 -i -w 10 --tun-type ipip', '-a -f 11 -6 -r [2001:db8:52::12]:80 -i -w 5 --tun-type ipip', '',
    ].join('\n'));
  } finally {
    L.ok(['-C']);
  }
});
