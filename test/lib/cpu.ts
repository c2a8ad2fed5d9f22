// Runs test code on one CPU. Per-CPU data-plane state (rr cursors, the clock cache, the LRU's
// local lists) is only predictable when every BPF_PROG_TEST_RUN of a test runs on the same CPU;
// the kernel runs a test run on the calling thread's CPU, and node's JS thread is the process's
// main thread (tid = pid), so pinning that thread is enough.
import { execFileSync } from 'node:child_process';

function affinity(): string {
  const out = execFileSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
  const m = /affinity mask: ([0-9a-f,]+)/.exec(out);
  if (!m) throw new Error(`taskset: unexpected output ${JSON.stringify(out)}`);
  return m[1]!.replace(/,/g, '');
}

export function onOneCpu<T>(fn: () => T): T {
  const mask = affinity();
  const cpu = BigInt(`0x${mask}`).toString(2).split('').reverse().indexOf('1');
  execFileSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  try {
    return fn();
  } finally {
    execFileSync('taskset', ['-p', mask, String(process.pid)], { stdio: 'ignore' });
  }
}
