/**
 * A network namespace of a test's own with a director driven through the public CLI, as an
 * operator would (`nsenter --net=/run/netns/NS lvs-xdp ...`), with pin and state directories of
 * its own. Everything is removed by cleanup(), which also runs on process exit (the test runner
 * may skip `after` hooks when a `before` hook fails).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { repoRoot } from './paths.js';

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
export interface CliOptions {
  input?: string;
  env?: Record<string, string>;
  /** Run as nobody (setpriv), to see what an unprivileged user gets. */
  user?: boolean;
  /** Fault injection: the process SIGKILLs itself at this point (LVS_XDP_KILL_AT, src/director/faults.ts). */
  killAt?: string;
}

const ROOT = repoRoot();

export class CliNamespace {
  readonly ns: string;
  readonly pin: string;
  readonly state: string;
  readonly env: NodeJS.ProcessEnv;
  private readonly hooks: (() => void)[] = [];
  private readonly extra: string[] = [];
  private cleaned = true;

  /** `tag` names everything: namespace TAG<pid>, /sys/fs/bpf/TAG-<pid>, /run/lvs-xdp-test/TAG-<pid>. */
  constructor(tag: string) {
    this.ns = `${tag}${process.pid}`;
    this.pin = `/sys/fs/bpf/${tag}-${process.pid}`;
    this.state = `/run/lvs-xdp-test/${tag}-${process.pid}`;
    this.env = { ...process.env, LVS_XDP_PIN_DIR: this.pin, LVS_XDP_STATE_DIR: this.state };
  }

  /** Creates the namespace (call from `before`). */
  create(): this {
    rmSync(this.pin, { recursive: true, force: true });
    this.sh('ip', 'netns', 'add', this.ns);
    this.cleaned = false;
    process.on('exit', () => this.cleanup());
    return this;
  }

  /** One more namespace, NS + suffix (e.g. a realserver's), removed after the director's. */
  addNamespace(suffix: string): string {
    const name = `${this.ns}${suffix}`;
    this.sh('ip', 'netns', 'add', name);
    this.extra.push(name);
    return name;
  }

  /** Argv that runs `argv` inside the namespace. */
  argv(argv: string[]): string[] {
    return [`--net=/run/netns/${this.ns}`, ...argv];
  }

  run(args: string[], o: CliOptions = {}): CliRun {
    const user = o.user ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const r = spawnSync('nsenter', this.argv([...user, process.execPath, `${ROOT}/bin/lvs-xdp.js`, ...args]),
      { env: { ...this.env, ...o.env, ...(o.killAt ? { LVS_XDP_KILL_AT: o.killAt } : {}) }, input: o.input, encoding: 'utf8' });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs and asserts success; returns the whole run (standard error too). */
  check(args: string[], o: CliOptions = {}): CliRun {
    const r = this.run(args, o);
    assert.equal(r.code, 0, `lvs-xdp ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  }

  /** Runs and asserts success; returns standard output. */
  ok(args: string[], o: CliOptions = {}): string {
    return this.check(args, o).stdout;
  }

  /** `ip -n NS ...`; throws on failure. */
  ip(...args: string[]): string {
    return this.sh('ip', '-n', this.ns, ...args);
  }

  /** A veth pair in the namespace, both ends up; `first` optionally given a MAC and an address. */
  veth(first: string, peer: string, o: { mac?: string; addr?: string } = {}): void {
    this.ip('link', 'add', first, 'type', 'veth', 'peer', 'name', peer);
    if (o.mac) this.ip('link', 'set', first, 'address', o.mac);
    if (o.addr) this.ip('addr', 'add', o.addr, 'dev', first);
    this.ip('link', 'set', first, 'up');
    this.ip('link', 'set', peer, 'up');
  }

  sh(cmd: string, ...args: string[]): string {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs before the director is detached and the namespace removed (last registered, first run). */
  onCleanup(fn: () => void): void {
    this.hooks.unshift(fn);
  }

  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const fn of this.hooks) {
      try {
        fn();
      } catch {
        // keep cleaning
      }
    }
    this.run(['detach']);
    spawnSync('ip', ['netns', 'del', this.ns]);
    for (const n of this.extra) spawnSync('ip', ['netns', 'del', n]);
    rmSync(this.pin, { recursive: true, force: true });
    rmSync(`${this.pin}-chain`, { recursive: true, force: true }); // src/director/chain.ts
    rmSync(this.state, { recursive: true, force: true });
  }
}
