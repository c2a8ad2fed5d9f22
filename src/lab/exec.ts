/**
 * Running programs for the namespace lab: plain commands, commands inside a network namespace
 * (always `nsenter --net=/run/netns/NS`, never `ip netns exec`, which remounts /sys and hides
 * bpffs), and the lvs-xdp CLI of this installation. Arguments go as arrays (execFile / spawn),
 * never through a shell, except the configuration scripts the lab writes itself.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { join } from 'node:path';
import { installRoot } from '../install-root.js';

export interface RunResult { code: number; stdout: string; stderr: string; signal: string | null }

export interface RunOptions {
  /** Text written to standard input. */
  input?: string;
  /** Kill after this many ms (the result then has code -1 and signal SIGKILL). Default 60 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export { installRoot };

/**
 * The environment for programs the lab starts: without LVS_XDP_PIN_DIR / LVS_XDP_STATE_DIR, so
 * that every namespace gets its own per-namespace state directories.
 */
export function labEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.LVS_XDP_PIN_DIR;
  delete env.LVS_XDP_STATE_DIR;
  return env;
}

/** Runs a program to completion; never throws for a non-zero exit (see `check`). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? labEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, signal });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

export class CommandError extends Error {
  constructor(readonly argv: readonly string[], readonly result: RunResult) {
    super(`${argv.join(' ')} failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ''}): ${(result.stderr || result.stdout).trim().slice(0, 2000)}`);
  }
}

/** Runs a program and throws a CommandError unless it exits 0. */
export async function check(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new CommandError([cmd, ...args], r);
  return r.stdout;
}

export function netnsPath(ns: string): string {
  return `/run/netns/${ns}`;
}

/** argv prefix that runs a program inside network namespace `ns`. */
export function inNs(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=${netnsPath(ns)}`, '--', cmd, ...args]];
}

export function runIn(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [c, a] = inNs(ns, cmd, args);
  return run(c, a, opts);
}

export function checkIn(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const [c, a] = inNs(ns, cmd, args);
  return check(c, a, opts);
}

/** Runs a shell script (written by the lab, not from user input) inside a namespace. */
export function shIn(ns: string, script: string, opts: RunOptions = {}): Promise<string> {
  return checkIn(ns, 'sh', ['-ec', script], opts);
}

/** The lvs-xdp CLI of this installation: [node, [bin/lvs-xdp.js, ...args]]. */
export function cliArgv(args: readonly string[]): [string, string[]] {
  return [process.execPath, [join(installRoot(), 'bin', 'lvs-xdp.js'), ...args]];
}

/** Runs the lvs-xdp CLI inside a namespace; never throws for a non-zero exit. */
export function lvsIn(ns: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [node, a] = cliArgv(args);
  return runIn(ns, node, a, opts);
}

/** Starts a long-running program inside a namespace. */
export function spawnIn(ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [c, a] = inNs(ns, cmd, args);
  return spawn(c, a, { env: labEnv(), ...opts });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}
