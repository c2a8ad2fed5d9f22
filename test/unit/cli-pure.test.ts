// The CLI's pure parts: ipvsadm argv handling, the snapshot codec and the status text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpvsadmArgv, isIpvsadmInvocation } from '../../src/cli/ipvsadm.js';
import { formatStatus } from '../../src/cli/status.js';
import { encodeSnapshot, decodeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type Snapshot } from '../../src/director/snapshot.js';
import { emptyAllocation } from '../../src/dataplane/compile.js';
import { DEFAULT_SIZES, DEFAULT_KNOBS } from '../../src/dataplane/loader.js';
import { StateError, ConfigError } from '../../src/errors.js';
import { localVipsOn } from '../../src/ops/neighprobe.js';

test('ipvsadm invocations are told apart from subcommands', () => {
  assert.equal(isIpvsadmInvocation(['-A', '-t', '1.2.3.4:80', '-s', 'mh']), true);
  assert.equal(isIpvsadmInvocation(['-Ln']), true);
  assert.equal(isIpvsadmInvocation(['--list', '--numeric']), true);
  assert.equal(isIpvsadmInvocation(['status']), false);
  assert.equal(isIpvsadmInvocation(['attach', 'eth0']), false);
  assert.equal(isIpvsadmInvocation(['-L', '--help']), false);
  // Subcommands whose options look like ipvsadm's are not ipvsadm.
  assert.equal(isIpvsadmInvocation(['run', '-f', 'x.yaml', '--listen', '127.0.0.1:9469']), false);
  assert.equal(isIpvsadmInvocation(['top', '-d', '2']), false);
  assert.equal(isIpvsadmInvocation(['--pin-dir', '/sys/fs/bpf/x', '-L', '-n']), true);
  assert.equal(isIpvsadmInvocation(['--listing']), false);
});

test('listing options: combined short flags, service filter, state options', () => {
  let p = parseIpvsadmArgv(['-Ln', '--stats', '--exact']);
  assert.equal(p.action, 'list');
  assert.equal(p.stats, true);
  assert.equal(p.exact, true);
  p = parseIpvsadmArgv(['-Lnc']);
  assert.equal(p.action, 'list');
  assert.equal(p.connections, true);
  p = parseIpvsadmArgv(['-L', '-n', '-t', '[2001:db8::1]:443', '--pin-dir', '/sys/fs/bpf/x', '--json']);
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '2001:db8::1', port: 443 });
  assert.equal(p.state.pinDir, '/sys/fs/bpf/x');
  assert.equal(p.json, true);
  assert.equal(parseIpvsadmArgv(['-S', '-n']).action, 'save');
  assert.equal(parseIpvsadmArgv(['--restore']).action, 'restore');
  assert.equal(parseIpvsadmArgv(['-Z']).action, 'zero');
  assert.equal(parseIpvsadmArgv(['-c']).action, 'list');
});

test('rule argv keeps the rule words and strips our options', () => {
  const p = parseIpvsadmArgv(['--state-dir=/tmp/s', '-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-g', '-w', '3', '--json']);
  assert.equal(p.action, 'rule');
  assert.deepEqual(p.rule, ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-g', '-w', '3']);
  assert.equal(p.state.stateDir, '/tmp/s');
  assert.equal(p.json, true);
});

test('bundles, --timeout, --set, -v and the no-op sort options', () => {
  assert.equal(isIpvsadmInvocation(['-At', '1.2.3.4:80', '-s', 'mh']), true);
  assert.equal(isIpvsadmInvocation(['-Lnt', '1.2.3.4:80']), true);
  assert.equal(isIpvsadmInvocation(['--set', '900', '120', '300']), true);
  assert.equal(isIpvsadmInvocation(['-v']), true);
  assert.equal(isIpvsadmInvocation(['-V']), false, 'commander\'s --version');
  let p = parseIpvsadmArgv(['-Lnt', '10.0.0.1:80', '--sort']);
  assert.equal(p.action, 'list');
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '10.0.0.1', port: 80 });
  p = parseIpvsadmArgv(['-L', '-n', '-t10.0.0.1:80', '--nosort']);
  assert.deepEqual(p.service, { protocol: 'tcp', vip: '10.0.0.1', port: 80 });
  assert.equal(parseIpvsadmArgv(['-L', '--timeout']).action, 'timeout');
  assert.equal(parseIpvsadmArgv(['--timeout', '-L', '-n']).action, 'timeout');
  p = parseIpvsadmArgv(['--set', '900', '0', '30']);
  assert.equal(p.action, 'set');
  assert.deepEqual(p.timeouts, [900, 0, 30]);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', '120']), /--set: needs three timeouts/);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', 'x', '1']), /--set: needs three timeouts/);
  assert.throws(() => parseIpvsadmArgv(['--set', '900', '1', '99999999999']), /udp timeout 99999999999 out of range/);
  assert.equal(parseIpvsadmArgv(['-v']).action, 'version');
  assert.throws(() => parseIpvsadmArgv(['-L', '-c', '--stats']), /-c: options conflict/);
  assert.throws(() => parseIpvsadmArgv(['-Lc', '--rate']), /-c: options conflict/);
  assert.throws(() => parseIpvsadmArgv(['-L', '-S']), /only one command/);
});

test('listing errors name the option', () => {
  assert.throws(() => parseIpvsadmArgv(['-L', '--bogus']), (e: unknown) => e instanceof ConfigError && /--bogus/.test(e.message));
  assert.throws(() => parseIpvsadmArgv(['-L', '-S']), ConfigError);
  assert.throws(() => parseIpvsadmArgv(['-L', '-t', '10.0.0.1:99999']), /port 99999 out of range/);
  assert.throws(() => parseIpvsadmArgv(['-L', '--pin-dir']), /needs a value/);
});

function snapshot(): Snapshot {
  return {
    format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, tool: '0.1.0', createdAt: 'x', updatedAt: 'y',
    sizes: DEFAULT_SIZES, knobs: DEFAULT_KNOBS, progId: 7, interfaces: { eth0: { ifindex: 2, mode: 'native', attachedAt: 'z' } },
    applied: {
      config: { services: [{ protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], ops: false, realservers: [{ address: '10.0.0.2', port: 80, weight: 1, method: 'dr' }] }] },
      allocation: { ...emptyAllocation(), services: { 'tcp 10.0.0.1:80': 0 } }, l2: { 'tcp 10.0.0.1:80/10.0.0.2': { mac: '02:00:00:00:00:02' } },
      digests: { 'tcp 10.0.0.1:80': 'abc' }, reals: {},
    },
  };
}

test('snapshot: round trip; corrupt, foreign, newer and incomplete files are StateErrors naming the file', () => {
  const s = snapshot();
  assert.deepEqual(decodeSnapshot(encodeSnapshot(s), 'f'), s);
  const bad = (buf: Buffer, re: RegExp) => assert.throws(() => decodeSnapshot(buf, '/run/x/state.msgpack'), (e: unknown) => e instanceof StateError && re.test(e.message) && e.message.includes('/run/x/state.msgpack'));
  bad(Buffer.from([0xc1, 0xc1, 0xc1]), /is corrupt/);
  bad(encodeSnapshot(s).subarray(0, 20), /is corrupt|incomplete|not an lvs-xdp/);
  bad(Buffer.from([0x81, 0xa1, 0x61, 0x01]), /is not an lvs-xdp state snapshot/);
  bad(encodeSnapshot({ ...s, version: SNAPSHOT_VERSION + 1 }), new RegExp(`has version ${SNAPSHOT_VERSION + 1}, this lvs-xdp reads up to ${SNAPSHOT_VERSION}`));
  const partial = { ...s } as Partial<Snapshot>;
  delete partial.applied;
  bad(encodeSnapshot(partial as Snapshot), /incomplete/);
});

test('snapshot: a version 1 file (pending apply recorded as its target only) is migrated', () => {
  const s = snapshot();
  const v1 = { ...s, version: 1, pending: { ...s.applied, startedAt: 't0' } };
  const m = decodeSnapshot(encodeSnapshot(v1 as unknown as Snapshot), 'f');
  assert.equal(m.version, SNAPSHOT_VERSION);
  assert.deepEqual(m.pending, { target: s.applied, startedAt: 't0' });
  assert.equal(m.pending?.steps, undefined, 'no steps recorded: the repair replays the whole plan');
});

test('status text says not attached, or lists interfaces and fill levels', () => {
  assert.match(formatStatus({ attached: false, pinDir: '/sys/fs/bpf/lvs-xdp', stateDir: '/run/lvs-xdp/lvs-xdp', interfaces: [], services: 0, realservers: 0, version: '0.1.0' }), /not attached/);
  const t = formatStatus({
    attached: true, pinDir: '/p', stateDir: '/s', version: '0.1.0', services: 2, realservers: 5,
    interfaces: [{ name: 'eth0', ifindex: 2, mode: 'native', attachedAt: 't', linked: true }],
    connections: { entries: 50, max: 200, evicted: 7 }, memoryBytes: 3 * 1048576, sizes: DEFAULT_SIZES, knobs: DEFAULT_KNOBS,
  });
  assert.match(t, /interface +eth0 \(ifindex 2\) native/);
  assert.match(t, /conn table +50 \/ 200 entries \(25\.0%\), 7 evicted since load/);
  assert.match(t, /memory +3\.0 MiB/);
});

test('attach announces the VIPs that are addresses of the attached interface only, in canonical form, once each', () => {
  const ifaces = {
    eth0: [
      { address: '192.0.2.10', netmask: '255.255.255.255', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.10/32' },
      { address: '2001:db8::10', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: '2001:db8::10/128', scopeid: 0 },
      { address: 'fe80::1%eth0', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    ],
    lo: [{ address: '192.0.2.11', netmask: '255.255.255.255', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '192.0.2.11/32' }],
  } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
  assert.deepEqual(localVipsOn(['192.0.2.10', '2001:DB8:0::10', '192.0.2.11', '192.0.2.10', '0.0.0.0'], 'eth0', ifaces), ['192.0.2.10', '2001:db8::10']);
  assert.deepEqual(localVipsOn(['192.0.2.10'], 'eth1', ifaces), []);
  assert.deepEqual(localVipsOn(['192.0.2.11'], 'lo', ifaces), ['192.0.2.11']);
});
