/**
 * ipvsadm's sync daemon options (src/ipvsadm/daemon.ts): --start-daemon / --stop-daemon with
 * their options parse to a config, defaults are filled as the kernel fills them, and -L --daemon
 * prints ipvsadm's exact line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonArgs, resolveDaemon, formatDaemonList, isMulticast } from '../../src/ipvsadm/daemon.js';
import { expandShortOptions } from '../../src/ipvsadm/argv.js';
import { ConfigError } from '../../src/errors.js';

const words = (s: string) => expandShortOptions(s.split(/\s+/).filter(Boolean));

test('--start-daemon with every option', () => {
  assert.deepEqual(
    parseDaemonArgs(words('--start-daemon backup --mcast-interface vlan20 --syncid 7 --sync-maxlen 9000 --mcast-group ff02::8848 --mcast-port 8850 --mcast-ttl 2')),
    { op: 'start-daemon', daemon: { role: 'backup', mcastInterface: 'vlan20', syncid: 7, syncMaxlen: 9000, mcastGroup: 'ff02::8848', mcastPort: 8850, mcastTtl: 2 } },
  );
});

test('--start-daemon master alone: interface eth0 and syncid 0 as ipvsadm defaults them', () => {
  assert.deepEqual(parseDaemonArgs(words('--start-daemon master')), {
    op: 'start-daemon', daemon: { role: 'master', mcastInterface: 'eth0', syncid: 0 },
  });
});

test('--stop-daemon and -L --daemon (-Ln --daemon too)', () => {
  assert.deepEqual(parseDaemonArgs(words('--stop-daemon backup')), { op: 'stop-daemon', role: 'backup' });
  assert.deepEqual(parseDaemonArgs(words('-L --daemon')), { op: 'list-daemon' });
  assert.deepEqual(parseDaemonArgs(words('-Ln --daemon')), { op: 'list-daemon' });
  assert.deepEqual(parseDaemonArgs(words('--list --daemon')), { op: 'list-daemon' });
});

test('other ipvsadm commands are not daemon commands', () => {
  assert.equal(parseDaemonArgs(words('-A -t 10.0.0.1:80 -s rr')), undefined);
  assert.equal(parseDaemonArgs(words('-L -n')), undefined);
});

test('refused as ipvsadm refuses them, with the option named', () => {
  const bad: [string, RegExp][] = [
    ['--start-daemon primary', /--start-daemon: "primary" is not master or backup/],
    ['--start-daemon master --syncid 256', /--syncid: 256 is out of range 0\.\.255/],
    ['--start-daemon master --syncid x', /--syncid: "x" is not a number/],
    ['--start-daemon master --mcast-ttl 0', /--mcast-ttl: 0 is out of range 1\.\.255/],
    ['--start-daemon master --mcast-port 70000', /--mcast-port: 70000 is out of range/],
    ['--start-daemon master --sync-maxlen 65508', /--sync-maxlen: 65508 is out of range 1\.\.65507/],
    ['--start-daemon master --mcast-group 10.0.0.1', /--mcast-group: "10\.0\.0\.1" is not a multicast address/],
    ['--start-daemon master --mcast-interface averyveryverylongname', /is not an interface name/],
    ['--start-daemon master --syncid 1 --syncid 2', /--syncid given twice/],
    ['--stop-daemon master --mcast-ttl 2', /--mcast-ttl is an option of --start-daemon/],
    ['--start-daemon master --stop-daemon backup', /only one of/],
    ['--start-daemon', /--start-daemon needs a value/],
    ['--syncid 3', /--syncid needs --start-daemon/],
    ['--daemon', /use -L --daemon/],
    ['--start-daemon master extra', /unexpected argument "extra"/],
  ];
  for (const [argv, want] of bad) {
    assert.throws(() => parseDaemonArgs(words(argv)), (e: unknown) => e instanceof ConfigError && want.test(e.message), argv);
  }
});

test('defaults filled as the kernel does, and the exact -L --daemon lines', () => {
  const master = parseDaemonArgs(words('--start-daemon master --mcast-interface eth1 --syncid 1'));
  const backup = parseDaemonArgs(words('--start-daemon backup --mcast-interface eth1 --syncid 1 --mcast-group ff02::8848'));
  assert.ok(master?.op === 'start-daemon' && backup?.op === 'start-daemon');
  const m = resolveDaemon(master.daemon, 9000);
  const b = resolveDaemon(backup.daemon, 9000, ['192.0.2.2']);
  assert.deepEqual(m, { role: 'master', mcastInterface: 'eth1', syncid: 1, syncMaxlen: 1472, mcastGroup: '224.0.0.81', mcastPort: 8848, mcastTtl: 1, peers: [] });
  assert.deepEqual(b, { role: 'backup', mcastInterface: 'eth1', syncid: 1, syncMaxlen: 8952, mcastGroup: 'ff02::8848', mcastPort: 8848, mcastTtl: 1, peers: ['192.0.2.2'] });
  // the master's line first whatever the order given
  assert.equal(formatDaemonList([b, m]),
    'master sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
    'backup sync daemon (mcast=eth1, syncid=1, maxlen=8952, group=ff02::8848, port=8848, ttl=1)\n');
  assert.equal(formatDaemonList([]), '');
});

test('multicast groups', () => {
  assert.ok(isMulticast('224.0.0.81'));
  assert.ok(isMulticast('239.255.255.255'));
  assert.ok(!isMulticast('240.0.0.1'));
  assert.ok(isMulticast('ff02::8848'));
  assert.ok(!isMulticast('fe80::1'));
  assert.ok(!isMulticast('eth0'));
});
