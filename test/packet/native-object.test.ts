// BpfObject against the kernel: open, configure, load, BTF, verifier failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

const JIT_SYSCTL = '/proc/sys/net/core/bpf_jit_enable';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject, MapType, ProgType, progInfo } from '../../src/native/index.js';
import { native } from '../../src/native/testing.js';
import { LayoutError, LvsError, VerifierError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';

const root = repoRoot();
const floors = join(root, 'bpf', 'floors.o');
execFileSync('make', ['-s', '-C', join(root, 'bpf'), 'floors.o'], { stdio: 'inherit' });

test('inspect without load: names, map definitions, BTF, globals', () => {
  const o = BpfObject.inspect(floors);
  try {
    assert.equal(o.loaded, false);
    assert.deepEqual(o.progNames().sort(), ['floor_drop', 'floor_pass', 'floor_push_ipv4_tx', 'floor_swap_tx']);
    const rodata = o.mapNames().find((n) => n.endsWith('.rodata'));
    assert.ok(rodata, `no .rodata map in ${o.mapNames().join(', ')}`);
    const def = o.mapDef(rodata);
    assert.equal(def.type, MapType.ARRAY);
    assert.equal(def.internal, true);
    assert.equal(def.valueSize, 4 + 128); // floor_knob + the ABI anchor (its lvs_real is 64 bytes since LVS-NAT)

    const svc = o.btfStruct('lvs_svc');
    assert.equal(svc.size, 40);
    assert.equal(svc.kind, 'struct');
    const m = Object.fromEntries(svc.members.map((x) => [x.name, x]));
    assert.deepEqual([m['persist_mask']?.offset, m['persist_mask']?.size], [16, 16]);
    assert.deepEqual([m['flags']?.offset, m['flags']?.size, m['flags']?.bitOffset], [32, 2, 256]);
    assert.deepEqual([m['fwmark']?.offset, m['fwmark']?.size], [36, 4]);

    const real = o.btfStruct('lvs_real');
    assert.equal(real.size, 64);
    const r = Object.fromEntries(real.members.map((x) => [x.name, x]));
    assert.deepEqual([r['mac']?.offset, r['mac']?.size], [16, 6]);
    assert.deepEqual([r['smac']?.offset, r['smac']?.size], [22, 6]);
    assert.deepEqual([r['ifindex']?.offset, r['ifindex']?.size], [36, 4]);

    const key = o.btfStruct('lvs_svc_key');
    assert.equal(key.size, 20);
    const anchor = o.btfStruct('lvs_abi_anchor');
    assert.deepEqual(
      anchor.members.map((x) => [x.name, x.offset, x.size]),
      [
        ['svc_key', 0, 20],
        ['svc', 20, 40],
        ['real', 60, 64],
        ['counter', 124, 4],
      ],
    );

    const counters = o.btfEnum('lvs_counter');
    assert.equal(counters[0]?.name, 'LVS_C_PASS_NOT_IP');
    assert.equal(counters[0]?.value, 0);
    assert.equal(counters.at(-1)?.name, 'LVS_C_MAX');
    counters.forEach((c, i) => assert.equal(c.value, i, c.name));
    assert.ok(counters.some((c) => c.name === 'LVS_C_DROP_NO_REAL'));

    assert.throws(() => o.btfStruct('no_such_struct'), LayoutError);
    assert.throws(() => o.btfEnum('lvs_svc'), LayoutError);
    assert.deepEqual([...o.getGlobal('floor_knob')], [7, 0, 0, 0]);
  } finally {
    o.close();
  }
});

test('setGlobal: right size applies at load; wrong size or name is a LayoutError', async () => {
  const o = BpfObject.inspect(floors);
  try {
    assert.throws(() => o.setGlobal('floor_knob', Buffer.alloc(2)), (e: unknown) => {
      assert.ok(e instanceof LayoutError);
      assert.match(e.message, /floor_knob' is 4 bytes, got 2/);
      assert.equal(e.errno, 'EINVAL');
      return true;
    });
    assert.throws(() => o.setGlobal('floor_knob', Buffer.alloc(8)), LayoutError);
    assert.throws(() => o.setGlobal('no_such_knob', Buffer.alloc(4)), (e: unknown) => {
      assert.ok(e instanceof LayoutError);
      assert.match(e.message, /no global variable named 'no_such_knob'/);
      return true;
    });
    const v = Buffer.alloc(4);
    v.writeUInt32LE(0xdeadbeef);
    o.setGlobal('floor_knob', v);
    assert.equal(o.getGlobal('floor_knob').readUInt32LE(), 0xdeadbeef);

    await o.load();
    assert.equal(o.loaded, true);
    const rodata = o.map(o.mapNames().find((n) => n.endsWith('.rodata'))!);
    const value = rodata.lookup(Buffer.alloc(4));
    assert.ok(value);
    assert.equal(value.readUInt32LE(0), 0xdeadbeef, 'the kernel map holds the value set before load');
    assert.throws(() => o.setGlobal('floor_knob', v), /before load/);

    const info = progInfo(o.progFd('floor_drop'));
    assert.equal(info.name, 'floor_drop');
    assert.equal(info.type, ProgType.XDP);
    assert.match(info.tag, /^[0-9a-f]{16}$/);
    // JIT on (the lab's kernel): machine code exists exactly when the sysctl says so.
    // (The sysctl exists only in the initial network namespace.)
    const jit = existsSync(JIT_SYSCTL) ? readFileSync(JIT_SYSCTL, 'utf8').trim() : undefined;
    assert.ok(Number.isInteger(info.jitedLen));
    if (jit !== undefined) assert.equal(info.jitedLen > 0, jit !== '0', `jitedLen ${info.jitedLen}, bpf_jit_enable ${jit}`);
    assert.throws(() => o.progFd('nope'), LayoutError);
  } finally {
    o.close();
  }
});

test('open() with globals and reuseMaps shares the map of an earlier load', async () => {
  const a = await BpfObject.open(floors);
  try {
    const name = a.mapNames().find((n) => n.endsWith('.rodata'))!;
    const first = a.map(name);
    const b = await BpfObject.open(floors, { reuseMaps: { [name]: first } });
    try {
      assert.equal(b.map(name).info.id, first.info.id);
    } finally {
      b.close();
    }
  } finally {
    a.close();
  }
});

test('the object is not usable while a load runs', async () => {
  const o = BpfObject.inspect(floors);
  try {
    const p = o.load();
    assert.throws(() => o.mapNames(), /being loaded/);
    assert.throws(() => o.close(), /being loaded/);
    await p;
    assert.ok(o.mapNames().length > 0);
  } finally {
    o.close();
  }
});

test('a program the verifier rejects gives a VerifierError with the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-native-'));
  try {
    const obj = join(dir, 'bad.o');
    execFileSync('clang', [
      '-O2', '-g', '-target', 'bpf', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
      '-c', join(root, 'test', 'fixtures', 'bad.bpf.c'), '-o', obj,
    ]);
    await assert.rejects(BpfObject.open(obj), (e: unknown) => {
      assert.ok(e instanceof VerifierError, String(e));
      assert.match(e.log, /invalid access to packet/);
      assert.match(e.message, /verifier log \(last lines\)/);
      assert.match(e.message, /R1 offset is outside of the packet/);
      assert.equal(e.exitCode, 5);
      assert.equal(e.syscall, 'bpf_object__load');
      return true;
    });

    // The raw binding: errno fields and the libbpf output.
    const raw = new (native().BpfObject)();
    raw.open(obj);
    await assert.rejects(raw.load(), (e: NodeJS.ErrnoException & { log?: string; libbpfLog?: string }) => {
      assert.equal(e.code, 'EACCES');
      assert.equal(e.errno, 13);
      assert.match(e.libbpfLog ?? '', /bad_unchecked_read/);
      return true;
    });
    await assert.rejects(raw.load(), /failed; open it again/);
    raw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('opening a missing file reports ENOENT with libbpf output', () => {
  assert.throws(() => BpfObject.inspect('/nonexistent/lvs.o'), (e: unknown) => {
    assert.ok(e instanceof LvsError);
    assert.equal(e.errno, 'ENOENT');
    assert.equal(e.syscall, 'bpf_object__open_file');
    assert.match(e.message, /nonexistent\/lvs\.o/);
    return true;
  });
});
