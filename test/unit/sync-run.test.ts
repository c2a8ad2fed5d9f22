/**
 * Connection sync in `run` (pure parts): which daemons run (settings.sync over the ones started
 * with --start-daemon, per role), the records --start-daemon / --stop-daemon keep, the ipvsadm
 * argv with lvs-xdp's state options, and settings.sync in the configuration file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncSpecs } from '../../src/ops/sync-run.js';
import { recordSyncDaemon, removeSyncDaemon, readSyncDaemons, SYNC_DAEMONS_FILE } from '../../src/sync/state.js';
import { parseDaemonInvocation } from '../../src/cli/ipvsadm-daemon.js';
import { isIpvsadmInvocation } from '../../src/cli/ipvsadm-detect.js';
import { parseConfigText } from '../../src/config/parse.js';
import { formatConfigYaml } from '../../src/config/format.js';
import { ConfigError } from '../../src/errors.js';
import { dumpEntries, maskedClient } from '../../src/sync/dump.js';
import { IP_VS_CONN_F, decode, encode } from '../../src/sync/proto.js';
import type { ConnectionInfo } from '../../src/director/types.js';

const mtu = () => 9000;

test('syncSpecs: the file wins per role, a recorded daemon fills the other role, defaults as the kernel fills them', () => {
  const specs = syncSpecs(
    [{ role: 'master', interface: 'eth1', syncid: 7, peers: ['192.0.2.3'], multicast: false, interval: 0.05, refresh: 5 }],
    [{ role: 'master', mcastInterface: 'eth0', syncid: 1 }, { role: 'backup', mcastInterface: 'eth0', syncid: 1, mcastGroup: 'ff02::8848' }],
    mtu,
  );
  // A master sends at most 1500 - 28 bytes whatever the MTU; a backup reads up to MTU - 48 (IPv6).
  assert.deepEqual(specs, [
    { role: 'master', mcastInterface: 'eth1', syncid: 7, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1, peers: ['192.0.2.3'], source: 'file', multicast: false, intervalMs: 50, refreshS: 5 },
    { role: 'backup', mcastInterface: 'eth0', syncid: 1, syncMaxlen: 9000 - 48, mcastGroup: 'ff02::8848', mcastPort: 8848, mcastTtl: 1, peers: [], source: 'ipvsadm' },
  ]);
  assert.deepEqual(syncSpecs([], [], mtu), []);
});

test('--start-daemon records replace the same role; --stop-daemon removes one, the file goes with the last', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-sync-'));
  try {
    assert.deepEqual(readSyncDaemons(dir), []);
    recordSyncDaemon(dir, { role: 'master', mcastInterface: 'eth0', syncid: 1 });
    recordSyncDaemon(dir, { role: 'backup', mcastInterface: 'eth0', syncid: 1 });
    recordSyncDaemon(dir, { role: 'master', mcastInterface: 'eth1', syncid: 2 });
    assert.deepEqual(readSyncDaemons(dir).map((d) => `${d.role} ${d.mcastInterface} ${d.syncid}`).sort(), ['backup eth0 1', 'master eth1 2']);
    assert.equal(removeSyncDaemon(dir, 'master'), true);
    assert.equal(removeSyncDaemon(dir, 'master'), false);
    assert.equal(removeSyncDaemon(dir, 'backup'), true);
    assert.equal(existsSync(join(dir, SYNC_DAEMONS_FILE)), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the daemon commands are ipvsadm invocations, with lvs-xdp\'s --pin-dir / --state-dir taken out', () => {
  assert.equal(isIpvsadmInvocation(['--start-daemon', 'master']), true);
  assert.equal(isIpvsadmInvocation(['--stop-daemon', 'backup']), true);
  assert.equal(isIpvsadmInvocation(['-L', '--daemon']), true);
  assert.deepEqual(parseDaemonInvocation(['--state-dir', '/tmp/s', '--start-daemon', 'backup', '--syncid', '9', '--pin-dir=/sys/fs/bpf/x']), {
    cmd: { op: 'start-daemon', daemon: { role: 'backup', mcastInterface: 'eth0', syncid: 9 } }, state: { stateDir: '/tmp/s', pinDir: '/sys/fs/bpf/x' },
  });
  assert.deepEqual(parseDaemonInvocation(['-L', '--daemon']), { cmd: { op: 'list-daemon' }, state: {} });
  assert.equal(parseDaemonInvocation(['-L', '-n']), undefined);
  assert.throws(() => parseDaemonInvocation(['--start-daemon', 'primary']), ConfigError);
});

test('settings.sync in the configuration file: parsed, written back, refused with the field named', () => {
  const text = [
    'settings:',
    '  sync:',
    '    - { role: master, interface: eth0, syncid: 51, interval: 0.1, refresh: 2, peers: [198.51.100.3] }',
    '    - { role: backup, interface: eth0, syncid: 51 }',
    'services: []', '',
  ].join('\n');
  const cfg = parseConfigText(text, 'lb.yaml');
  assert.deepEqual(cfg.settings?.sync, [
    { role: 'master', interface: 'eth0', syncid: 51, interval: 0.1, refresh: 2, peers: ['198.51.100.3'] },
    { role: 'backup', interface: 'eth0', syncid: 51 },
  ]);
  assert.deepEqual(parseConfigText(formatConfigYaml(cfg), 'again.yaml').settings?.sync, cfg.settings?.sync);
  for (const [bad, field] of [
    ['[{ role: primary, interface: eth0 }]', /role/],
    ['[{ role: master, interface: eth0, syncid: 256 }]', /syncid/],
    ['[{ role: master, interface: eth0, group: 10.0.0.1 }]', /group/],
    ['[{ role: master, interface: eth0, peers: [nohost] }]', /peers/],
    ['[{ role: master, interface: eth0 }, { role: master, interface: eth1 }]', /at most one master and one backup/],
  ] as const) {
    assert.throws(() => parseConfigText(`settings:\n  sync: ${bad}\nservices: []\n`, 'bad.yaml'), (e: Error) => e instanceof ConfigError && field.test(e.message) && /sync/.test(e.message), bad);
  }
});

test('sync flush: the table as sync entries, templates first (once per client group), each connection with the time it has left', () => {
  const cfg = parseConfigText([
    'services:',
    '  - { vip: 192.0.2.10, port: 80, scheduler: rr, persistence: { timeout: 300, netmask: 255.255.255.0 }, realservers: [{ address: 10.0.0.1, method: dr }] }',
    '  - { vip: "2001:db8::10", port: 53, protocol: udp, scheduler: rr, realservers: [{ address: "2001:db8::1", method: tun }] }',
    '',
  ].join('\n'), 'lb.yaml');
  const conn = (client: string, port: number, state: string, expire: number, v6 = false): ConnectionInfo => ({
    protocol: v6 ? 'udp' : 'tcp', state, expire, client: { address: client, port },
    virtual: { address: v6 ? '2001:db8::10' : '192.0.2.10', port: v6 ? 53 : 80 },
    realserver: { address: v6 ? '2001:db8::1' : '10.0.0.1', port: v6 ? 53 : 80 }, service: v6 ? 'udp [2001:db8::10]:53' : 'tcp 192.0.2.10:80',
  });
  const r = dumpEntries(cfg, [
    conn('198.51.100.7', 40001, 'ESTABLISHED', 899.2), conn('198.51.100.9', 40002, 'FIN_WAIT', 0.3),
    conn('2001:db8:1::5', 5353, 'UDP', 12.5, true),
    { ...conn('198.51.100.8', 40003, 'ESTABLISHED', 5), realserver: undefined, service: undefined },
  ]);
  assert.equal(r.templates, 1);
  assert.equal(r.skipped, 1);
  assert.deepEqual(r.conns.map((c) => [c.caddr, c.cport, c.vport, c.daddr, c.timeout, (c.flags & IP_VS_CONN_F.TEMPLATE) !== 0]), [
    ['198.51.100.0', 0, 80, '10.0.0.1', 300, true],
    ['198.51.100.7', 40001, 80, '10.0.0.1', 900, false],
    ['198.51.100.9', 40002, 80, '10.0.0.1', 1, false],
    ['2001:db8:1::5', 5353, 53, '2001:db8::1', 13, false],
  ]);
  // What goes on the wire decodes back to the same entries.
  assert.deepEqual(decode(encode(r.conns, { syncid: 1, maxLen: 1472 })[0]!).conns, r.conns);
  assert.equal(maskedClient('2001:db8:1:2:3::9', '64'), '2001:db8:1:2::');
});
