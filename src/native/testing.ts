/**
 * For tests and benchmarks only, not for src/: the raw binding (no typed errors, no fd
 * ownership) and the worker-thread twins of facade calls, which tests use to prove the native
 * async paths give the same results as the synchronous ones.
 */
import { loadNative } from './load.js';
import { callAsync } from './common.js';
import { splitDump, type BpfMap, type DumpOptions, type MapEntries } from './maps.js';
import { UpdateFlag } from './constants.js';
import type { NativeBinding } from './binding.js';
import type { TestRunOptions, TestRunResult } from './test-run.js';

export { loadNative } from './load.js';

/** The raw binding (build/Release/lvs_bpf.node). */
export function native(): NativeBinding {
  return loadNative();
}

/** BpfMap.entries() on a worker thread. */
export async function entriesAsync(map: BpfMap, opts: DumpOptions = {}): Promise<MapEntries> {
  const fd = map.liveFd();
  return splitDump(await callAsync(map.ctx('dump'), (n) => n.mapLookupBatchAsync(fd, opts)));
}

/** BpfMap.updateMany() on a worker thread. */
export async function updateManyAsync(map: BpfMap, keys: Buffer[], values: Buffer[], flags: number = UpdateFlag.ANY): Promise<number> {
  const fd = map.liveFd();
  if (keys.length !== values.length) throw new RangeError('updateManyAsync: keys and values differ in count');
  const k = Buffer.concat(keys);
  const v = Buffer.concat(values);
  return (await callAsync(map.ctx('update'), (n) => n.mapUpdateBatchAsync(fd, k, v, flags))).count;
}

/** BpfMap.deleteMany() on a worker thread. */
export async function deleteManyAsync(map: BpfMap, keys: Buffer[]): Promise<number> {
  const fd = map.liveFd();
  const k = Buffer.concat(keys);
  return (await callAsync(map.ctx('delete'), (n) => n.mapDeleteBatchAsync(fd, k))).count;
}

/** testRun() on a worker thread. */
export function testRunAsync(progFd: number, data: Buffer, opts: TestRunOptions = {}): Promise<TestRunResult> {
  return callAsync({ action: 'test-run program' }, (n) => n.progTestRunAsync(progFd, data, opts));
}

/** testRunEach() on a worker thread. */
export function testRunEachAsync(progFd: number, data: Buffer, count: number, opts: TestRunOptions = {}): Promise<Float64Array> {
  return callAsync({ action: 'test-run program' }, (n) => n.progTestRunEachAsync(progFd, data, count, opts));
}
