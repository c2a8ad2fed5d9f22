/**
 * The lab's traffic client: run inside a client namespace as
 * `node dist/src/lab/client.js MODE JSON` and prints one JSON result on standard output.
 *
 * - `burst`: `count` HTTP GETs per source address, each on a new connection (Connection: close),
 *   `concurrency` at a time; counts which realserver answered, per source address too.
 * - `loop`: `workers` loops of keep-alive connections (`perConnection` requests each, then a new
 *   connection) until standard input closes or `maxSeconds` pass. Every failure is recorded with
 *   its time and the realserver its connection had answered from before (undefined for the first
 *   request of a connection), so that a test can tell failures caused by deleting that
 *   realserver from any other.
 * - `udp`: `count` datagrams per source address, each from a new socket (a new source port),
 *   retried once after `timeoutMs`; counts which realserver answered.
 */
import { request, Agent } from 'node:http';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

export interface BurstSpec { url: string; sources: string[]; count: number; concurrency?: number; timeoutMs?: number }
export interface BurstResult {
  requests: number; ok: number; failed: number; counts: Record<string, number>;
  bySource: Record<string, Record<string, number>>; errors: string[];
}
export interface LoopSpec { url: string; sources: string[]; workers: number; perConnection: number; maxSeconds: number; pauseMs?: number; timeoutMs?: number }
export interface LoopFailure {
  /** When it failed, and when the connection's first request started (ms since the epoch). */
  t: number; since: number; source: string;
  /** The realserver that answered earlier on this connection (undefined for its first request). */
  realserver?: string; request: number; error: string;
}
export interface LoopResult {
  requests: number; ok: number; connections: number; counts: Record<string, number>; failures: LoopFailure[];
  /** Connections whose responses came from more than one realserver (must never happen). */
  switched: number; startedAt: number; endedAt: number;
}
export interface UdpSpec { host: string; port: number; sources: string[]; count: number; timeoutMs?: number }
export interface UdpResult { datagrams: number; answered: number; retried: number; counts: Record<string, number>; lost: number }

/** One request; resolves with the realserver's name and the client port of the TCP connection
 *  it went over (a keep-alive agent silently opens a new one when the old was reset while idle). */
function get(url: URL, source: string, agent: Agent | false, close: boolean, timeoutMs: number): Promise<string> {
  return getOn(url, source, agent, close, timeoutMs).then((r) => r.name);
}

function getOn(url: URL, source: string, agent: Agent | false, close: boolean, timeoutMs: number): Promise<{ name: string; port: number }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 80, path: `${url.pathname}${url.search}`,
      localAddress: source, agent, headers: close ? { Connection: 'close' } : {},
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      const port = res.socket?.localPort ?? 0;
      res.on('end', () => (res.statusCode === 200 ? resolve({ name: body.trim(), port }) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

export async function burst(spec: BurstSpec): Promise<BurstResult> {
  const url = new URL(spec.url);
  const jobs: string[] = [];
  for (let i = 0; i < spec.count; i++) for (const s of spec.sources) jobs.push(s);
  const r: BurstResult = { requests: jobs.length, ok: 0, failed: 0, counts: {}, bySource: {}, errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const source = jobs[next++]!;
      try {
        const name = await get(url, source, false, true, spec.timeoutMs ?? 5000);
        r.ok++;
        bump(r.counts, name);
        bump((r.bySource[source] ??= {}), name);
      } catch (e) {
        r.failed++;
        if (r.errors.length < 20) r.errors.push(`${source}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, spec.concurrency ?? 4) }, worker));
  return r;
}

export async function loop(spec: LoopSpec, stopped: () => boolean): Promise<LoopResult> {
  const url = new URL(spec.url);
  const r: LoopResult = { requests: 0, ok: 0, connections: 0, counts: {}, failures: [], switched: 0, startedAt: Date.now(), endedAt: 0 };
  const deadline = Date.now() + spec.maxSeconds * 1000;
  const done = (): boolean => stopped() || Date.now() > deadline;
  const worker = async (w: number): Promise<void> => {
    const source = spec.sources[w % spec.sources.length]!;
    while (!done()) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      r.connections++;
      let known: string | undefined;
      let knownPort: number | undefined;
      const since = Date.now();
      try {
        for (let i = 0; i < spec.perConnection && !done(); i++) {
          r.requests++;
          try {
            const { name, port } = await getOn(url, source, agent, i === spec.perConnection - 1, spec.timeoutMs ?? 5000);
            r.ok++;
            bump(r.counts, name);
            if (knownPort !== undefined && port !== knownPort) {
              // The agent replaced a connection that was reset while idle (e.g. after its
              // realserver was deleted): a new connection, which may go anywhere.
              r.connections++;
              known = undefined;
            }
            if (known !== undefined && known !== name) r.switched++;
            known = name;
            knownPort = port;
          } catch (e) {
            const f: LoopFailure = { t: Date.now(), since, source, request: i, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
            if (known !== undefined) f.realserver = known;
            r.failures.push(f);
            break;
          }
          if (spec.pauseMs) await new Promise((res) => setTimeout(res, spec.pauseMs));
        }
      } finally {
        agent.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: spec.workers }, (_, w) => worker(w)));
  r.endedAt = Date.now();
  return r;
}

function udpOnce(spec: UdpSpec, source: string, payload: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket({ type: isIPv6(spec.host) ? 'udp6' : 'udp4' });
    const finish = (v: string | undefined): void => {
      clearTimeout(t);
      try {
        s.close();
      } catch {
        // closed already
      }
      resolve(v);
    };
    const t = setTimeout(() => finish(undefined), spec.timeoutMs ?? 1000);
    s.on('error', () => finish(undefined));
    s.on('message', (msg) => {
      const text = msg.toString();
      if (text.endsWith(` ${payload}`)) finish(text.slice(0, text.length - payload.length - 1));
    });
    s.bind(0, source, () => s.send(payload, spec.port, spec.host));
  });
}

export async function udp(spec: UdpSpec): Promise<UdpResult> {
  const r: UdpResult = { datagrams: 0, answered: 0, retried: 0, counts: {}, lost: 0 };
  const jobs: string[] = [];
  for (let i = 0; i < spec.count; i++) for (const s of spec.sources) jobs.push(s);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const n = next++;
      const source = jobs[n]!;
      r.datagrams++;
      let name = await udpOnce(spec, source, `hello ${n}`);
      if (name === undefined) {
        r.retried++;
        name = await udpOnce(spec, source, `hello ${n} again`);
      }
      if (name === undefined) r.lost++;
      else {
        r.answered++;
        bump(r.counts, name);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return r;
}

async function main(): Promise<void> {
  const [mode, json] = process.argv.slice(2);
  const spec = JSON.parse(json ?? '{}') as unknown;
  let out: unknown;
  if (mode === 'burst') out = await burst(spec as BurstSpec);
  else if (mode === 'udp') out = await udp(spec as UdpSpec);
  else if (mode === 'loop') {
    let stop = false;
    process.stdin.on('data', () => undefined);
    process.stdin.on('end', () => { stop = true; });
    process.stdin.on('close', () => { stop = true; });
    process.on('SIGTERM', () => { stop = true; });
    out = await loop(spec as LoopSpec, () => stop);
  } else throw new Error(`unknown mode ${String(mode)} (burst, loop, udp)`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e: unknown) => {
    console.error(`lab client: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
