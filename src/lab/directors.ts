/**
 * What the labs of several directors share (src/lab/ha.ts: active/active behind ECMP;
 * src/lab/vrrp.ts: active/standby with keepalived): the lab's life (create, destroy with the
 * other labs on signals), namespaces made as lab.ts makes them, the lab server on realservers,
 * `lvs-xdp run` per director with its JSON log, and the client's long-lived connections with the
 * report of what they went through.
 */
import { existsSync, mkdirSync, writeFileSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { cliArgv, installRoot, lvsIn, runIn, spawnIn, waitFor, CommandError } from './exec.js';
import { removeLab } from './namespaces.js';
import { addNamespaces, trackLab, untrackLab, type StreamHandle } from './lab.js';
import { LAB_RUN_DIR, NAME_RE } from './paths.js';

export interface LabHost { role: string; ns: string; v4: string; v6: string }
export interface LabClient extends LabHost { v4s: string[]; v6s: string[] }
/** A director: its configuration file, run's listener, the running `run` and its log lines. */
export interface LabDirector extends LabHost { file: string; listen: string; run?: ChildProcess; logs: Record<string, unknown>[] }

/** A long download; `times` has each line's arrival (ms since the epoch). */
export interface HaStream extends StreamHandle { vip: string; source: string; times: number[]; code?: number }

export interface StreamReport {
  streams: number;
  /** Ended early: curl exited (56: reset by a realserver that did not know the flow; 28: timeout). */
  broken: { vip: string; source: string; code: number }[];
  resets: number;
  timeouts: number;
  /** Lines from more than one realserver on one connection (cannot happen on one TCP connection; checked anyway). */
  changed: number;
  /** Still running but no line for `stallMs` at `at`. */
  stalled: number;
  /** The longest pause between two lines after `since` (the interruption a client saw). */
  maxGapMs: number;
}

/** Pure: what the long-lived connections went through since `since` (ms), judged at `at`. */
export function streamReport(streams: readonly HaStream[], since: number, at: number, stallMs = 3000): StreamReport {
  const r: StreamReport = { streams: streams.length, broken: [], resets: 0, timeouts: 0, changed: 0, stalled: 0, maxGapMs: 0 };
  for (const s of streams) {
    if (s.code !== undefined) {
      r.broken.push({ vip: s.vip, source: s.source, code: s.code });
      if (s.code === 56) r.resets++;
      if (s.code === 28) r.timeouts++;
    }
    if (new Set(s.lines.map((l) => l.split(' ')[0])).size > 1) r.changed++;
    const last = s.times[s.times.length - 1] ?? 0;
    if (s.code === undefined && at - last > stallMs) r.stalled++;
    let prev = s.times.filter((t) => t <= since).pop();
    for (const t of s.times) {
      if (t <= since) continue;
      if (prev !== undefined) r.maxGapMs = Math.max(r.maxGapMs, t - prev);
      prev = t;
    }
  }
  return r;
}

/** Calls `onLine` for each whole line `child` writes to stdout (and stderr, unless told not to). */
export function eachLine(child: ChildProcess, onLine: (line: string) => void, opts: { stderr?: boolean } = {}): void {
  let buf = '';
  const onData = (t: string): void => {
    buf += t;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) onLine(l);
  };
  child.stdout!.setEncoding('utf8').on('data', onData);
  if (opts.stderr === false) child.stderr?.resume();
  else child.stderr?.setEncoding('utf8').on('data', onData);
}

export abstract class DirectorsLab {
  readonly prefix: string;
  readonly dir: string;
  readonly net: string;
  abstract readonly client: LabClient;
  protected readonly log: (line: string) => void;
  private destroyed = false;
  kept = false;

  protected constructor(prefix: string, log?: (line: string) => void) {
    if (!NAME_RE.test(prefix)) throw new Error(`bad lab prefix ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
    this.dir = join(LAB_RUN_DIR, prefix);
    this.net = `${prefix}-net`;
    this.log = log ?? (() => undefined);
  }

  /** Every namespace of the lab, the switch first. */
  abstract get namespaces(): string[];

  /** The lab's virtual services (each with its VIP). */
  abstract readonly services: readonly { vip: string }[];

  /** The VIPs of the lab's services, in their order. */
  get vips(): string[] {
    return this.services.map((s) => s.vip);
  }

  protected abstract build(): Promise<void>;

  /** Builds `lab` (after removing any previous lab of its prefix); on failure removes it. */
  protected static async made<T extends DirectorsLab>(lab: T): Promise<T> {
    removeLab(lab.prefix);
    trackLab(lab);
    try {
      await lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  /** Removes everything the lab made (synchronous, idempotent); not when `kept`. */
  destroy(): void {
    if (this.kept || this.destroyed) return;
    this.destroyed = true;
    untrackLab(this);
    removeLab(this.prefix);
  }

  /** The lab directory, its record and the namespaces (as lab.ts makes them). */
  protected async addNamespaces(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, 'lab.json'), `${JSON.stringify({ prefix: this.prefix, pid: process.pid, namespaces: this.namespaces }, null, 2)}\n`);
    await addNamespaces(this.namespaces, this.net);
  }

  /** bpf/floors.o, whose XDP_PASS program a director's bridge port needs (XDP_TX on veth). */
  protected floors(): string {
    const floors = join(installRoot(), 'bpf', 'floors.o');
    if (!existsSync(floors)) throw new Error(`${floors} is missing: run scripts/setup.sh first`);
    return floors;
  }

  /** The lab server (HTTP names itself, /stream) on a realserver, detached, logging to the lab dir. */
  protected async startServer(r: LabHost): Promise<void> {
    const ready = join(this.dir, `${r.role}.ready`);
    rmSync(ready, { force: true });
    const fd = openSync(join(this.dir, `${r.role}.log`), 'a');
    const child = spawnIn(r.ns, process.execPath, [join(installRoot(), 'dist', 'src', 'lab', 'server.js'), '--name', r.role, '--http-port', '80', '--ready', ready],
      { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    await waitFor(`the server on ${r.role}`, () => existsSync(ready), 20_000, 25);
  }

  async lvsOk(ns: string, args: readonly string[]): Promise<string> {
    const r = await lvsIn(ns, args);
    if (r.code !== 0) throw new CommandError(['nsenter', `--net=/run/netns/${ns}`, 'lvs-xdp', ...args], r);
    return r.stdout;
  }

  /** Starts `lvs-xdp run` (JSON log lines into d.logs) and waits until it listens. */
  async startRun(d: LabDirector, extra: readonly string[] = []): Promise<ChildProcess> {
    const [node, argv] = cliArgv(['run', '-f', d.file, '--log-format', 'json', '--resync', '1', '--listen', d.listen, ...extra]);
    const child = spawnIn(d.ns, node, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const mark = d.logs.length;
    let err = '';
    eachLine(child, (l) => {
      try {
        d.logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        err += `${l}\n`;
      }
    });
    child.on('exit', (code, signal) => d.logs.push({ event: 'exited', code, signal }));
    d.run = child;
    const l = await waitFor(`run on ${d.role}`, () => d.logs.slice(mark).find((x) => x.event === 'listening' || x.event === 'exited'), 30_000, 20);
    if (l.event !== 'listening') throw new Error(`run on ${d.role} exited: ${err}`);
    return child;
  }

  /** A long download (`/stream`) from the client through `vip`, line by line. */
  stream(vip: string, source: string, seconds = 90, ms = 50): HaStream {
    const url = `http://${vip.includes(':') ? `[${vip}]` : vip}/stream?seconds=${seconds}&ms=${ms}`;
    const child = spawnIn(this.client.ns, 'curl', ['-sSN', '--interface', source, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const times: number[] = [];
    eachLine(child, (l) => {
      lines.push(l);
      times.push(Date.now());
    }, { stderr: false });
    const h: HaStream = { vip, source, lines, times, exited: Promise.resolve(0), kill: () => child.kill('SIGKILL') };
    h.exited = new Promise<number>((resolve) => child.on('close', (code) => {
      h.code = code ?? -1;
      resolve(h.code);
    }));
    return h;
  }

  /** One request per source address to `vip`: the realserver names (or '' for a failure). */
  async names(vip: string, sources: readonly string[]): Promise<string[]> {
    return Promise.all(sources.map(async (s) => {
      const r = await runIn(this.client.ns, 'curl', ['-sS', '--max-time', '5', '--interface', s, `http://${vip.includes(':') ? `[${vip}]` : vip}/`]);
      return r.code === 0 ? r.stdout.trim() : '';
    }));
  }

  /** Packets the director's data plane forwarded so far (all services). */
  async forwarded(d: LabHost): Promise<number> {
    const r = await lvsIn(d.ns, ['stats', '--interval', '0', '--json']);
    if (r.code !== 0) return 0;
    const v = JSON.parse(r.stdout) as { counters: Record<string, { value: number | string }> };
    let n = 0;
    for (const [k, c] of Object.entries(v.counters)) if (/^fwd_(dr|tun)$/i.test(k)) n += Number(c.value);
    return n;
  }

  /** Log text of a realserver's server (for failures). */
  serverLog(r: LabHost): string {
    try {
      return readFileSync(join(this.dir, `${r.role}.log`), 'utf8');
    } catch {
      return '';
    }
  }
}
