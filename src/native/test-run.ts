/** BPF_PROG_TEST_RUN (native/test_run.cc): a program run on a frame without a device. */
import { call } from './common.js';
import type { TestRunOptionsRaw, TestRunResultRaw } from './binding.js';

export type TestRunOptions = TestRunOptionsRaw;
export type TestRunResult = TestRunResultRaw;

/** Runs a program once (or `repeat` times) on a frame; returns verdict, output frame, ns/run. */
export function testRun(progFd: number, data: Buffer, opts: TestRunOptions = {}): TestRunResult {
  return call({ action: 'test-run program' }, (n) => n.progTestRun(progFd, data, opts));
}

/**
 * `count` separate runs, each on a fresh copy of `data` (programs that push headers see the
 * original frame every time); returns kernel-measured ns per run, for benchmark statistics.
 */
export function testRunEach(progFd: number, data: Buffer, count: number, opts: TestRunOptions = {}): Float64Array {
  return call({ action: 'test-run program' }, (n) => n.progTestRunEach(progFd, data, count, opts));
}
