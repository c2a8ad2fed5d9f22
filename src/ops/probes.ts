/**
 * The health probes: TCP connect, HTTP(S) GET, UDP request/response and an external command
 * (argv, never a shell). Each resolves to { ok, detail } within the check's timeout and never
 * throws. A probe goes to the realserver's own address (via: direct) or, for the forwarding-path
 * mode, to the VIP from a local source address and port that policy routing sends to that one
 * realserver's MAC (see forwarding.ts).
 */
import { connect, isIPv6, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Target, UrlSpec } from './spec.js';

export interface ProbeResult { ok: boolean; detail: string }

/** Where a probe connects from and to. */
export interface Endpoint {
  host: string;
  port: number;
  /** Local source (forwarding-path mode). */
  localAddress?: string;
  localPort?: number;
}

const MAX_BODY = 64 * 1024;

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  // Socket errors read well as their code (ECONNREFUSED); TLS codes need their text
  // (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate).
  if (err.code && err.message && !/^E[A-Z]+$/.test(err.code)) return `${err.code}: ${err.message}`;
  return err.code ?? err.message ?? String(e);
}

/**
 * Closes without a FIN handshake, so that a fixed local port is free again at once (no TIME_WAIT
 * on our side). Only on a socket open both ways: when the peer closed first it keeps the
 * TIME_WAIT, and resetAndDestroy() on a half-closed socket made node 20 spin.
 */
function hardClose(s: Socket | null | undefined): void {
  if (!s || s.destroyed) return;
  if (s.readyState !== 'open') {
    s.destroy();
    return;
  }
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

export function probeTcp(ep: Endpoint, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect({ host: ep.host, port: ep.port, ...(ep.localAddress ? { localAddress: ep.localAddress } : {}), ...(ep.localPort ? { localPort: ep.localPort } : {}) });
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      hardClose(s);
      resolve(r);
    };
    const t = setTimeout(() => finish({ ok: false, detail: `tcp connect timeout after ${timeoutMs} ms` }), timeoutMs);
    s.once('connect', () => finish({ ok: true, detail: 'tcp connect ok' }));
    s.once('error', (e) => finish({ ok: false, detail: `tcp connect: ${errText(e)}` }));
  });
}

export interface HttpCheck {
  tls: boolean; path: string; host?: string; expectStatus: number[]; expectBody?: string; tlsVerify: boolean;
  /** Inclusive status ranges accepted besides expectStatus (keepalived's status_code 200-299). */
  statusRanges?: [number, number][];
  /** MD5 (hex) the whole body must have (keepalived's digest). */
  digest?: string;
}

/** Whether a status passes: a listed code or range, else 200-399 when none is given. */
export function statusAccepted(status: number, codes: readonly number[], ranges: readonly [number, number][] = []): boolean {
  if (codes.length === 0 && ranges.length === 0) return status >= 200 && status < 400;
  return codes.includes(status) || ranges.some(([lo, hi]) => status >= lo && status <= hi);
}

function describeStatus(codes: readonly number[], ranges: readonly [number, number][] = []): string {
  const all = [...codes.map(String), ...ranges.map(([lo, hi]) => `${lo}-${hi}`)];
  return all.length ? all.join(' ') : '200-399';
}

// node:http, node:https (TLS) and node:dgram are loaded by the first probe that needs them: a run
// with tcp checks only (the small box's) does not hold them (about 2.5 MiB resident with TLS).
export async function probeHttp(ep: Endpoint, c: HttpCheck, timeoutMs: number): Promise<ProbeResult> {
  const { request } = c.tls ? await import('node:https') : await import('node:http');
  return new Promise((resolve) => {
    let done = false;
    let sock: Socket | undefined;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      hardClose(sock); // first: RST, so that a fixed local port is reusable at once
      req.destroy();
      resolve(r);
    };
    const scheme = c.tls ? 'https' : 'http';
    const hostHeader = c.host ?? (isIPv6(ep.host) ? `[${ep.host}]` : ep.host);
    const opts = {
      host: ep.host, port: ep.port, path: c.path, method: 'GET', agent: false as const,
      headers: { Host: hostHeader, 'User-Agent': 'lvs-xdp-health-check', Connection: 'close', Accept: '*/*' },
      ...(ep.localAddress ? { localAddress: ep.localAddress } : {}),
      ...(ep.localPort ? { localPort: ep.localPort } : {}),
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      if (!statusAccepted(status, c.expectStatus, c.statusRanges)) {
        finish({ ok: false, detail: `${scheme} ${c.path}: status ${status} (expected ${describeStatus(c.expectStatus, c.statusRanges)})` });
        return;
      }
      if (c.digest !== undefined) {
        // The digest covers the whole body (as keepalived's genhash computes it), however long;
        // the check's timeout bounds the read.
        const md5 = createHash('md5');
        let bodyHead = '';
        res.on('data', (d: Buffer) => {
          md5.update(d);
          if (c.expectBody !== undefined && bodyHead.length < MAX_BODY) bodyHead = (bodyHead + d.toString('utf8')).slice(0, MAX_BODY);
        });
        res.on('end', () => {
          const got = md5.digest('hex');
          if (got !== c.digest) finish({ ok: false, detail: `${scheme} ${c.path}: body digest ${got}, expected ${c.digest}` });
          else if (c.expectBody !== undefined && !new RegExp(c.expectBody).test(bodyHead)) finish({ ok: false, detail: `${scheme} ${c.path}: body does not match /${c.expectBody}/` });
          else finish({ ok: true, detail: `${scheme} ${c.path}: status ${status}, digest matches` });
        });
        res.on('error', (e) => finish({ ok: false, detail: `${scheme} ${c.path}: ${errText(e)}` }));
        return;
      }
      if (c.expectBody === undefined) {
        finish({ ok: true, detail: `${scheme} ${c.path}: status ${status}` });
        return;
      }
      const re = new RegExp(c.expectBody);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > MAX_BODY) body = body.slice(0, MAX_BODY);
        if (re.test(body)) finish({ ok: true, detail: `${scheme} ${c.path}: status ${status}, body matches` });
      });
      res.on('end', () => finish(re.test(body)
        ? { ok: true, detail: `${scheme} ${c.path}: status ${status}, body matches` }
        : { ok: false, detail: `${scheme} ${c.path}: body does not match /${c.expectBody}/` }));
      res.on('error', (e) => finish({ ok: false, detail: `${scheme} ${c.path}: ${errText(e)}` }));
    };
    const req = c.tls
      ? request({ ...opts, rejectUnauthorized: c.tlsVerify, ...(c.host && !isIPv6(c.host) && !/^[\d.]+$/.test(c.host) ? { servername: c.host } : {}) }, onResponse)
      : request(opts, onResponse);
    req.on('socket', (s: Socket) => { sock = s; });
    req.on('error', (e) => finish({ ok: false, detail: `${scheme} ${c.path}: ${errText(e)}` }));
    const t = setTimeout(() => finish({ ok: false, detail: `${scheme} ${c.path}: timeout after ${timeoutMs} ms` }), timeoutMs);
    req.end();
  });
}

export async function probeUdp(ep: Endpoint, payload: string, expect: string | undefined, timeoutMs: number): Promise<ProbeResult> {
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    const s = createSocket({ type: isIPv6(ep.host) ? 'udp6' : 'udp4' });
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      try {
        s.close();
      } catch {
        // closed already
      }
      resolve(r);
    };
    const t = setTimeout(() => finish({ ok: false, detail: `udp: no answer within ${timeoutMs} ms` }), timeoutMs);
    s.on('error', (e) => finish({ ok: false, detail: `udp: ${errText(e)}` }));
    s.on('message', (msg) => {
      const text = msg.toString('utf8');
      if (expect === undefined || text.includes(expect)) finish({ ok: true, detail: `udp: answer of ${msg.length} bytes` });
      else finish({ ok: false, detail: `udp: answer does not contain ${JSON.stringify(expect)}` });
    });
    s.bind({ port: ep.localPort ?? 0, ...(ep.localAddress ? { address: ep.localAddress } : {}), exclusive: true }, () => {
      // A connected socket: an ICMP port unreachable fails the probe at once (ECONNREFUSED).
      s.connect(ep.port, ep.host, () => {
        s.send(Buffer.from(payload, 'utf8'), (e) => { if (e) finish({ ok: false, detail: `udp send: ${errText(e)}` }); });
      });
    });
  });
}

/** Placeholders in an exec check's argv (whole words or parts): {address} {port} {vip} {vport} {service}. */
export function expandArgv(argv: readonly string[], t: Target): string[] {
  const vars: Record<string, string> = {
    address: t.address, port: String(t.spec.port), vip: t.vip, vport: String(t.vport), service: t.service,
  };
  return argv.map((a) => a.replace(/\{(address|port|vip|vport|service)\}/g, (_m, k: string) => vars[k]!));
}

export function probeExec(t: Target, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = expandArgv(t.spec.command ?? [], t);
    let out = '';
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const child = spawn(cmd!, args, {
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
      env: {
        ...process.env, LVS_REALSERVER: t.address, LVS_PORT: String(t.spec.port), LVS_VIP: t.vip, LVS_VPORT: String(t.vport),
        LVS_SERVICE: t.service,
      },
    });
    const keep = (d: Buffer): void => { if (out.length < 400) out += d.toString('utf8'); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const first = (): string => out.trim().split('\n')[0]?.slice(0, 200) ?? '';
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      finish({ ok: false, detail: `exec ${cmd}: killed after ${timeoutMs} ms` });
    }, timeoutMs);
    child.on('error', (e) => finish({ ok: false, detail: `exec ${cmd}: ${errText(e)}` }));
    child.on('close', (code, signal) => {
      const why = first();
      if (code === 0) finish({ ok: true, detail: `exec ${cmd}: exit 0${why ? `: ${why}` : ''}` });
      else finish({ ok: false, detail: `exec ${cmd}: ${signal ? `signal ${signal}` : `exit ${code}`}${why ? `: ${why}` : ''}` });
    });
  });
}

/**
 * An http(s) check of one or several URLs, one GET each (each within the check's timeout), in
 * order: the first that fails fails the check, as keepalived's url blocks.
 */
async function probeUrls(ep: Endpoint, t: Target, urls: readonly UrlSpec[]): Promise<ProbeResult> {
  const s = t.spec;
  const details: string[] = [];
  for (const u of urls) {
    const c: HttpCheck = { tls: s.type === 'https', path: u.path, expectStatus: u.expectStatus, tlsVerify: s.tlsVerify };
    const host = u.host ?? s.host;
    if (host !== undefined) c.host = host;
    if (u.expectStatusRanges) c.statusRanges = u.expectStatusRanges;
    if (u.expectBody !== undefined) c.expectBody = u.expectBody;
    if (u.digest !== undefined) c.digest = u.digest;
    const r = await probeHttp(ep, c, s.timeoutMs);
    if (!r.ok) return urls.length > 1 ? { ok: false, detail: `url ${details.length + 1} of ${urls.length}: ${r.detail}` } : r;
    details.push(r.detail);
  }
  return { ok: true, detail: details.join('; ') };
}

/** Runs the target's check once against `ep` (already chosen: the realserver, or the VIP path). */
export function runProbe(t: Target, ep: Endpoint): Promise<ProbeResult> {
  const s = t.spec;
  switch (s.type) {
    case 'tcp': return probeTcp(ep, s.timeoutMs);
    case 'http':
    case 'https': {
      const one: UrlSpec = { path: s.path, expectStatus: s.expectStatus };
      if (s.expectStatusRanges) one.expectStatusRanges = s.expectStatusRanges;
      if (s.expectBody !== undefined) one.expectBody = s.expectBody;
      if (s.digest !== undefined) one.digest = s.digest;
      return probeUrls(ep, t, s.urls ?? [one]);
    }
    case 'udp': return probeUdp(ep, s.payload, s.expect, s.timeoutMs);
    case 'exec': return probeExec(t, s.timeoutMs);
  }
}
