// The realserver state file and paths: per-namespace defaults, permissions, empty state removes
// the file, corrupt files refused, the lock serializes commands; and the decap ABI against BTF.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  emptyState, isEmpty, loadState, realserverPaths, saveState, withLock, type RealserverState,
} from '../../src/realserver/state.js';
import { decapAbiDrift, vipFromKey, vipKey } from '../../src/realserver/decap-abi.js';
import { DECAP_COUNTERS } from '../../src/abi/decap-generated.js';
import { BtfJson } from '../../src/abi/btf.js';
import { parseAddress } from '../../src/model/address.js';
import { StateError } from '../../src/errors.js';
import { netnsSuffix } from '../../src/director/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'lvsr-state-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const SAMPLE: RealserverState = {
  version: 1,
  vips: [{ vip: '10.0.0.1', prefix: 32, modes: ['dr', 'tun'], addedToLo: true, addedToDecap: true }],
  sysctls: [{ key: 'net/ipv4/conf/all/arp_ignore', previous: 0, value: 1, reason: 'arp' }],
  loBroughtUp: false,
  decap: { dev: 'eth0', mode: 'native', progId: 9 },
};

test('default paths are per network namespace and never the director\'s', () => {
  const saved = { pin: process.env.LVS_XDP_PIN_DIR, state: process.env.LVS_XDP_STATE_DIR };
  try {
    delete process.env.LVS_XDP_PIN_DIR;
    delete process.env.LVS_XDP_STATE_DIR;
    const p = realserverPaths();
    const ns = netnsSuffix();
    assert.equal(p.pinDir, `/sys/fs/bpf/lvs-xdp-realserver${ns}`);
    assert.equal(p.stateFile, `/run/lvs-xdp/lvs-xdp-realserver${ns}/realserver.json`);
    assert.equal(p.pins.link, `${p.pinDir}/link`);
    process.env.LVS_XDP_PIN_DIR = '/sys/fs/bpf/some-director';
    process.env.LVS_XDP_STATE_DIR = '/run/some-director';
    assert.deepEqual(realserverPaths(), p);
    assert.equal(realserverPaths({ pinDir: '/sys/fs/bpf/x', stateDir: '/run/y' }).stateFile, '/run/y/realserver.json');
  } finally {
    for (const [k, v] of [['LVS_XDP_PIN_DIR', saved.pin], ['LVS_XDP_STATE_DIR', saved.state]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('state file: 0600 in a 0700 directory, round trip, removed when empty', () => {
  const paths = realserverPaths({ pinDir: join(tmp, 'pins'), stateDir: join(tmp, 'st1') });
  assert.deepEqual(loadState(paths.stateFile), emptyState());
  saveState(paths, SAMPLE);
  assert.equal(statSync(paths.stateFile).mode & 0o777, 0o600);
  assert.equal(statSync(paths.stateDir).mode & 0o777, 0o700);
  assert.deepEqual(loadState(paths.stateFile), SAMPLE);
  assert.ok(!isEmpty(SAMPLE));
  saveState(paths, emptyState());
  assert.ok(!existsSync(paths.stateFile));
});

test('a corrupt or foreign state file is refused, not overwritten', () => {
  const paths = realserverPaths({ pinDir: join(tmp, 'pins'), stateDir: join(tmp, 'st2') });
  saveState(paths, SAMPLE);
  for (const bad of ['{', JSON.stringify({ version: 2 }), JSON.stringify({ ...SAMPLE, vips: [{ vip: 1 }] })]) {
    writeFileSync(paths.stateFile, bad);
    assert.throws(() => loadState(paths.stateFile), StateError);
    assert.equal(readFileSync(paths.stateFile, 'utf8'), bad);
  }
});

test('withLock runs one command at a time in a namespace and removes an empty state directory', async () => {
  const paths = realserverPaths({ pinDir: join(tmp, 'pins'), stateDir: join(tmp, 'st3') });
  const events: string[] = [];
  let releaseFirst!: () => void;
  const firstHolds = new Promise<void>((r) => (releaseFirst = r));
  const first = withLock(paths, async () => {
    events.push('first in');
    await firstHolds;
    events.push('first out');
  });
  while (!events.includes('first in')) await new Promise((r) => setImmediate(r));
  const second = withLock(paths, async () => {
    events.push('second in');
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(events, ['first in'], 'second waits for the lock');
  releaseFirst();
  await Promise.all([first, second]);
  assert.deepEqual(events, ['first in', 'first out', 'second in']);
  assert.ok(!existsSync(paths.stateDir));
});

test('decap structs and counters agree with bpf/lvs_decap.o BTF; drift is reported', () => {
  const btf = new BtfJson('bpf/lvs_decap.o');
  assert.deepEqual(decapAbiDrift((n) => btf.struct(n), (n) => btf.enumValues(n)), []);
  const lying = decapAbiDrift(
    (n) => {
      const s = btf.struct(n);
      return s && n === 'lvs_decap_vip_key' ? { ...s, members: s.members.map((m) => (m.name === 'family' ? { ...m, offset: 20 } : m)) } : s;
    },
    (n) => btf.enumValues(n)?.filter((v) => v.name !== 'LVS_DC_PASS_VLAN'),
  );
  assert.deepEqual(lying, [
    'struct lvs_decap_vip_key.family: offset 20 size 1 in BTF, offset 16 size 1 here',
    'decap counter PASS_VLAN: index missing in BTF, 6 here',
  ]);
});

test('README decap counter glossary lists every counter of lvs_decap.h, in order', () => {
  const text = readFileSync('README.md', 'utf8');
  const block = text.split('<!-- decap-counters:begin -->')[1]?.split('<!-- decap-counters:end -->')[0] ?? '';
  const names = [...block.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]!.toUpperCase());
  assert.deepEqual(names, DECAP_COUNTERS.map((c) => c.name));
});

test('VIP map keys: 16-byte address, family, zero padding; and back', () => {
  const k4 = vipKey(parseAddress('10.0.0.1')!);
  assert.equal(k4.toString('hex'), `0a000001${'00'.repeat(12)}04000000`);
  const k6 = vipKey(parseAddress('2001:db8::1')!);
  assert.equal(k6.length, 20);
  assert.equal(k6[16], 6);
  assert.equal(vipFromKey(k4), '10.0.0.1');
  assert.equal(vipFromKey(k6), '2001:db8::1');
});
