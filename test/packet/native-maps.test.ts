// Map operations against the kernel: element ops, iteration, batches, per-CPU values, maps of
// maps, pinning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpfMap,
  BpfObject,
  MapFlag,
  MapType,
  UpdateFlag,
  possibleCpus,
} from '../../src/native/index.js';
import { deleteManyAsync, entriesAsync, native, updateManyAsync } from '../../src/native/testing.js';
import { BpffsError, LvsError, StateError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';


const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

test('HASH: update, lookup, delete, flags, iterate', () => {
  const m = BpfMap.create({ type: MapType.HASH, name: 'nt_hash', keySize: 4, valueSize: 8, maxEntries: 64 });
  try {
    assert.equal(m.name, 'nt_hash');
    assert.equal(m.keySize, 4);
    assert.equal(m.valueBytes, 8);
    assert.equal(m.lookup(u32(1)), null);
    m.update(u32(1), u64(100));
    m.update(u32(2), u64(200), UpdateFlag.NOEXIST);
    assert.equal(m.lookup(u32(1))?.readBigUInt64LE(), 100n);
    assert.throws(() => m.update(u32(2), u64(1), UpdateFlag.NOEXIST), (e: unknown) => {
      assert.ok(e instanceof LvsError);
      assert.equal(e.errno, 'EEXIST');
      assert.equal(e.syscall, 'bpf_map_update_elem');
      return true;
    });
    assert.throws(() => m.update(u32(3), u64(1), UpdateFlag.EXIST), (e: unknown) => e instanceof LvsError && e.errno === 'ENOENT');
    // Sizes are checked against the map before the kernel sees the buffers.
    assert.throws(() => m.update(u32(3), Buffer.alloc(4)), RangeError);
    assert.throws(() => m.lookup(Buffer.alloc(2)), RangeError);

    const keys = [...m.keys()].map((k) => k.readUInt32LE()).sort();
    assert.deepEqual(keys, [1, 2]);
    assert.equal(m.delete(u32(1)), true);
    assert.equal(m.delete(u32(1)), false);
    assert.equal(m.nextKey(null)?.readUInt32LE(), 2);
    assert.equal(m.nextKey(u32(2)), null);
  } finally {
    m.close();
  }
});

test('HASH: batch update, dump and delete (sync and async)', async () => {
  const m = BpfMap.create({ type: MapType.HASH, keySize: 4, valueSize: 8, maxEntries: 2048 });
  try {
    const n = 1500;
    const keys = Array.from({ length: n }, (_, i) => u32(i));
    const values = keys.map((_, i) => u64(i * 3));
    assert.equal(m.updateMany(keys, values), n);

    const small = m.entries({ batchSize: 7 });
    assert.equal(small.batched, true);
    assert.equal(small.keys.length, n);
    const seen = new Map(small.keys.map((k, i) => [k.readUInt32LE(), small.values[i]!.readBigUInt64LE()]));
    assert.equal(seen.size, n);
    for (let i = 0; i < n; i += 97) assert.equal(seen.get(i), BigInt(i * 3));

    const big = await entriesAsync(m, { batchSize: 4096 });
    assert.equal(big.keys.length, n);

    // Missing keys are skipped by deleteMany.
    assert.equal(m.deleteMany([u32(0), u32(99999), u32(1), u32(2)]), 3);
    assert.equal(await deleteManyAsync(m, keys.slice(3, 503)), 500);
    assert.equal(await updateManyAsync(m, [u32(0)], [u64(7)]), 1);
    assert.equal(m.entries().keys.length, n - 503 + 1);
  } finally {
    m.close();
  }
});

test('ARRAY: zeroed slots, updates, no delete', () => {
  const m = BpfMap.create({ type: MapType.ARRAY, keySize: 4, valueSize: 12, maxEntries: 8 });
  try {
    assert.deepEqual(m.lookup(u32(3)), Buffer.alloc(12));
    assert.equal(m.lookup(u32(8)), null, 'out of range index reads as absent');
    m.update(u32(3), Buffer.from('abcdefghijkl'));
    const all = m.entries();
    assert.equal(all.keys.length, 8);
    assert.equal(all.values[3]!.toString(), 'abcdefghijkl');
    assert.throws(() => m.delete(u32(3)), (e: unknown) => e instanceof LvsError && e.errno === 'EINVAL');
    assert.throws(() => m.deleteMany([u32(3)]), (e: unknown) => e instanceof LvsError && e.errno === 'EINVAL');
  } finally {
    m.close();
  }
});

test('PERCPU_ARRAY: one 8-byte-aligned slot per possible CPU', () => {
  const cpus = possibleCpus();
  assert.ok(cpus >= 1);
  const m = BpfMap.create({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 12, maxEntries: 4 });
  try {
    assert.equal(m.perCpu, true);
    assert.equal(m.valueBytes, cpus * 16);
    assert.equal(m.lookup(u32(0))?.length, cpus * 16);
    const slots = Array.from({ length: cpus }, (_, c) => Buffer.alloc(12, c + 1));
    m.updatePerCpu(u32(1), slots);
    const back = m.lookupPerCpu(u32(1));
    assert.ok(back);
    assert.equal(back.length, cpus);
    back.forEach((b, c) => assert.deepEqual(b, Buffer.alloc(12, c + 1)));
    m.updatePerCpu(u32(2), Buffer.alloc(12, 9));
    assert.ok(m.lookupPerCpu(u32(2))!.every((b) => b.equals(Buffer.alloc(12, 9))));

    const dump = m.entries();
    assert.equal(dump.keys.length, 4);
    assert.equal(dump.values[1]!.length, cpus * 16);
    assert.deepEqual(m.splitPerCpu(dump.values[1]!), back);
  } finally {
    m.close();
  }
});

test('ARRAY_OF_MAPS with BPF_F_INNER_MAP inner arrays', () => {
  const inner = BpfMap.create({
    type: MapType.ARRAY, name: 'nt_inner', keySize: 4, valueSize: 4, maxEntries: 4, flags: MapFlag.INNER_MAP,
  });
  const outer = BpfMap.create({
    type: MapType.ARRAY_OF_MAPS, name: 'nt_outer', keySize: 4, valueSize: 4, maxEntries: 8, innerMapFd: inner.fd,
  });
  // INNER_MAP lets a differently sized array take a slot.
  const bigger = BpfMap.create({
    type: MapType.ARRAY, name: 'nt_inner2', keySize: 4, valueSize: 4, maxEntries: 64, flags: MapFlag.INNER_MAP,
  });
  try {
    outer.update(u32(0), u32(inner.fd));
    outer.update(u32(5), u32(bigger.fd));
    // Userspace writes fds and reads back map ids.
    assert.equal(outer.lookup(u32(0))?.readUInt32LE(), inner.info.id);
    assert.equal(outer.lookup(u32(1)), null);
    const viaId = BpfMap.fromId(outer.lookup(u32(5))!.readUInt32LE());
    try {
      assert.equal(viaId.maxEntries, 64);
      assert.equal(viaId.name, 'nt_inner2');
    } finally {
      viaId.close();
    }
    const all = outer.entries();
    assert.deepEqual(all.keys.map((k) => k.readUInt32LE()), [0, 5]);
    assert.deepEqual(all.values.map((v) => v.readUInt32LE()), [inner.info.id, bigger.info.id]);
    assert.equal(outer.delete(u32(0)), true);
    assert.equal(outer.lookup(u32(0)), null);
  } finally {
    outer.close();
    inner.close();
    bigger.close();
  }
});

test('batch ops fall back to element ops where the kernel has none (PROG_ARRAY)', async () => {
  const root = repoRoot();
  execFileSync('make', ['-s', '-C', join(root, 'bpf'), 'floors.o'], { stdio: 'inherit' });
  const obj = await BpfObject.open(join(root, 'bpf', 'floors.o'));
  const progs = BpfMap.create({ type: MapType.PROG_ARRAY, keySize: 4, valueSize: 4, maxEntries: 4 });
  try {
    const raw = native();
    const w = raw.mapUpdateBatch(progs.fd, Buffer.concat([u32(0), u32(2)]),
      Buffer.concat([u32(obj.progFd('floor_pass')), u32(obj.progFd('floor_drop'))]));
    assert.deepEqual(w, { count: 2, batched: false });
    const d = raw.mapLookupBatch(progs.fd);
    assert.equal(d.batched, false);
    assert.equal(d.count, 2);
    const ids = progs.entries().values.map((v) => v.readUInt32LE());
    assert.equal(ids.length, 2);
    assert.ok(ids.every((id) => id > 0));
    assert.equal(progs.deleteMany([u32(0), u32(1), u32(2)]), 2);
    assert.equal(progs.entries().keys.length, 0);
  } finally {
    progs.close();
    obj.close();
  }
});

test('pin and reopen through bpffs; pin errors are typed', () => {
  const m = BpfMap.create({ type: MapType.HASH, name: 'nt_pinned', keySize: 4, valueSize: 4, maxEntries: 4 });
  const dir = mkdtempSync('/sys/fs/bpf/lvsnt-');
  try {
    m.update(u32(7), u32(70));
    const path = join(dir, 'm');
    m.pin(path);
    const again = BpfMap.fromPin(path);
    try {
      assert.equal(again.info.id, m.info.id);
      assert.equal(again.lookup(u32(7))?.readUInt32LE(), 70);
    } finally {
      again.close();
    }
    assert.throws(() => m.pin(path), StateError);
    assert.throws(() => BpfMap.fromPin(join(dir, 'missing')), StateError);
    assert.throws(() => m.pin('/tmp/lvs-not-bpffs-pin'), BpffsError);
  } finally {
    m.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(dir), false);
});

test('raw errors carry code, errno and syscall', () => {
  const raw = native();
  assert.throws(() => raw.mapInfo(987654), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'EBADFD'); // what the kernel answers for a closed fd here
    assert.equal(e.errno, 77);
    assert.equal(e.syscall, 'bpf_obj_get_info_by_fd');
    return true;
  });
  assert.throws(
    () => raw.mapCreate({ type: MapType.HASH, keySize: 0, valueSize: 4, maxEntries: 1 }),
    (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.syscall === 'bpf_map_create',
  );
});
