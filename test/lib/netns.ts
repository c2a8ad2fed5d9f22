/**
 * Network namespaces for tests, with guaranteed cleanup: `withNetns(['a', 'b'], async ([a, b]) =>
 * ...)` creates uniquely named namespaces, runs the body, and always kills the processes started
 * in them and deletes them (veths inside go with them), also when the body throws.
 *
 * Commands run with `nsenter --net=/run/netns/NAME` (not `ip netns exec`, which gives the command
 * a fresh /sys without the host's bpffs), always with argument arrays.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

let counter = 0;

/** A name unique to this process: prefix + pid + counter in base 36, at most 15 bytes (IFNAMSIZ). */
export function uniqueName(prefix: string): string {
  const name = `${prefix}${process.pid.toString(36)}${(counter++).toString(36)}`;
  if (name.length > 15) throw new Error(`name ${name} longer than 15 bytes: use a shorter prefix`);
  return name;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class Netns {
  readonly name: string;
  private readonly procs = new Set<ChildProcess>();

  constructor(name: string) {
    this.name = name;
  }

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** `ip ARGS` inside the namespace; throws with ip's message on failure. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs a command inside the namespace and returns its exit status and output (never throws
   *  on a non-zero exit). */
  run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): RunResult {
    try {
      const stdout = execFileSync('nsenter', [`--net=${this.path}`, cmd, ...args], {
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
        input: opts.input ?? '',
        timeout: opts.timeoutMs ?? 60_000,
      });
      return { status: 0, stdout, stderr: '' };
    } catch (e) {
      const err = e as { status?: number | null; stdout?: string; stderr?: string; message: string };
      if (err.status === undefined || err.status === null) throw e;
      return { status: err.status, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  }

  /** Like run, but throws (with stderr) on a non-zero exit. */
  exec(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    const r = this.run(cmd, args, opts);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${this.name} exited ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A /proc/sys value as seen inside the namespace. */
  sysctl(key: string): string {
    return this.exec('cat', [`/proc/sys/${key}`]).trim();
  }

  setSysctl(key: string, value: string | number): void {
    this.exec('sh', ['-c', 'printf %s "$1" > "/proc/sys/$2"', 'sh', String(value), key]);
  }

  /**
   * Starts a long-running command inside the namespace; it is killed on destroy(). Resolves once
   * a line of its standard output matches `ready` (rejects if it exits first).
   */
  async spawn(cmd: string, args: readonly string[], ready: RegExp): Promise<ChildProcess> {
    const child = spawn('nsenter', [`--net=${this.path}`, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.add(child);
    child.on('exit', () => this.procs.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer) => {
        out += d.toString();
        if (ready.test(out)) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready: ${stderr.trim()}`)));
      child.once('error', reject);
    });
    return child;
  }

  /** Kills what spawn() started and deletes the namespace (idempotent). */
  async destroy(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGKILL');
        await gone;
      }
    }
    this.procs.clear();
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

/**
 * Creates one namespace per prefix (each name made unique), runs fn, and destroys them all
 * afterwards whatever happens. `cleanup` runs first (e.g. to undo state kept outside the
 * namespaces, like bpffs pins), also on failure; its own errors do not hide fn's.
 */
export async function withNetns<T>(
  prefixes: readonly string[],
  fn: (ns: Netns[]) => Promise<T>,
  cleanup?: (ns: Netns[]) => void | Promise<void>,
): Promise<T> {
  const made: Netns[] = [];
  try {
    for (const p of prefixes) {
      const ns = new Netns(uniqueName(p));
      execFileSync('ip', ['netns', 'add', ns.name], { stdio: ['ignore', 'ignore', 'pipe'] });
      made.push(ns);
      ns.ip('link', 'set', 'dev', 'lo', 'up');
    }
    return await fn(made);
  } finally {
    try {
      if (cleanup) await cleanup(made);
    } finally {
      for (const ns of made) await ns.destroy();
    }
  }
}

/**
 * A veth pair between two namespaces, both ends up; `a`/`b` name the ends (unique names from
 * uniqueName()). Checksum offload is turned off on both ends so crafted and forwarded frames
 * carry complete checksums.
 */
export function vethPair(a: Netns, aName: string, b: Netns, bName: string): void {
  a.ip('link', 'add', 'name', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name);
  a.ip('link', 'set', 'dev', aName, 'up');
  b.ip('link', 'set', 'dev', bName, 'up');
  for (const [ns, dev] of [[a, aName], [b, bName]] as const) {
    try {
      ns.exec('ethtool', ['-K', dev, 'tx', 'off']);
    } catch {
      // ethtool missing: only matters for frames forwarded by XDP_TX
    }
  }
}
