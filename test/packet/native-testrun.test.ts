// BPF_PROG_TEST_RUN through the binding, on the floor programs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BpfObject, TestRunFlag, XdpAction, testRun, testRunEach } from '../../src/native/index.js';
import { testRunAsync, testRunEachAsync } from '../../src/native/testing.js';
import { LvsError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';


/** Ethernet + IPv4 (UDP-ish payload): dst 02:..:01, src 02:..:02. */
function frame(payload = 26): Buffer {
  const f = Buffer.alloc(14 + 20 + payload);
  Buffer.from([2, 0, 0, 0, 0, 1]).copy(f, 0);
  Buffer.from([2, 0, 0, 0, 0, 2]).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + payload, 16);
  f[22] = 64;
  f[23] = 17;
  for (let i = 34; i < f.length; i++) f[i] = i & 0xff;
  return f;
}

function ipChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

let obj: BpfObject;
before(async () => {
  const root = repoRoot();
  execFileSync('make', ['-s', '-C', join(root, 'bpf'), 'floors.o'], { stdio: 'inherit' });
  obj = await BpfObject.open(join(root, 'bpf', 'floors.o'));
});
after(() => obj.close());

test('floor_drop returns XDP_DROP and the frame unchanged', () => {
  const f = frame();
  const r = testRun(obj.progFd('floor_drop'), f);
  assert.equal(r.retval, XdpAction.DROP);
  assert.deepEqual(r.data, f);
  assert.ok(Number.isFinite(r.duration));
});

test('floor_swap_tx swaps the MACs', async () => {
  const f = frame();
  const r = testRun(obj.progFd('floor_swap_tx'), f);
  assert.equal(r.retval, XdpAction.TX);
  assert.equal(r.data.length, f.length);
  assert.deepEqual(r.data.subarray(0, 6), f.subarray(6, 12));
  assert.deepEqual(r.data.subarray(6, 12), f.subarray(0, 6));
  assert.deepEqual(r.data.subarray(12), f.subarray(12));
  // (With repeat > 1 the program runs again on its own output: use testRunEach for fresh copies.)
  const a = await testRunAsync(obj.progFd('floor_swap_tx'), f);
  assert.deepEqual(a.data, r.data);
  // Not IPv4: passed untouched.
  const arp = Buffer.from(f);
  arp.writeUInt16BE(0x0806, 12);
  assert.equal(testRun(obj.progFd('floor_swap_tx'), arp).retval, XdpAction.PASS);
});

test('floor_push_ipv4_tx grows the frame by an outer IPv4 header', () => {
  const f = frame();
  const r = testRun(obj.progFd('floor_push_ipv4_tx'), f);
  assert.equal(r.retval, XdpAction.TX);
  assert.equal(r.data.length, f.length + 20);
  const outer = r.data.subarray(14, 34);
  assert.equal(outer[0], 0x45);
  assert.equal(outer[9], 4, 'IPIP');
  assert.equal(outer.readUInt16BE(2), f.length - 14 + 20);
  assert.ok(ipChecksumOk(outer));
  assert.deepEqual(r.data.subarray(34), f.subarray(14), 'inner packet intact');
  assert.deepEqual(r.data.subarray(0, 6), f.subarray(6, 12));
});

test('an output buffer too small for the result is an ENOSPC error', () => {
  assert.throws(
    () => testRun(obj.progFd('floor_push_ipv4_tx'), frame(), { dataSizeOut: 16 }),
    (e: unknown) => e instanceof LvsError && e.errno === 'ENOSPC',
  );
});

test('testRunEach: one kernel duration per run, each on the original frame', async () => {
  const f = frame();
  const d = testRunEach(obj.progFd('floor_push_ipv4_tx'), f, 50);
  assert.ok(d instanceof Float64Array);
  assert.equal(d.length, 50);
  assert.ok(d.every((x) => Number.isFinite(x) && x >= 0));
  assert.ok(d.some((x) => x > 0));
  assert.deepEqual(f, frame(), 'the input buffer is not modified');
  const a = await testRunEachAsync(obj.progFd('floor_drop'), f, 20);
  assert.equal(a.length, 20);
  assert.equal((await testRunEachAsync(obj.progFd('floor_drop'), f, 0)).length, 0);
});

test('live-frames mode runs without returning data', () => {
  const r = testRun(obj.progFd('floor_drop'), frame(), { flags: TestRunFlag.XDP_LIVE_FRAMES, repeat: 100, batchSize: 16 });
  assert.equal(r.data.length, 0);
  // batchSize is only for live frames: the kernel refuses it otherwise.
  assert.throws(() => testRun(obj.progFd('floor_drop'), frame(), { batchSize: 16 }), (e: unknown) => e instanceof LvsError && e.errno === 'EINVAL');
});

test('test run with a bad program fd fails with errno', () => {
  assert.throws(() => testRun(999999, frame()), (e: unknown) => e instanceof LvsError && e.errno === 'EBADF');
});
