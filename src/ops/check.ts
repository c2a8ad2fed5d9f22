/**
 * One health check of a realserver: the probe to its own address, or through the forwarding path
 * (via: forwarding): with policy routes through the director where the kernel can send it, or
 * built by the probe itself (pathprobe.ts) where it cannot (LVS-Tun, a VIP local here).
 */
import { errorText } from '../errors.js';
import { neighbourMacAsync } from '../director/neigh.js';
import type { L2Next } from '../dataplane/compile.js';
import type { VirtualService, Realserver } from '../model/types.js';
import { runProbe, type Endpoint, type ProbeResult } from './probes.js';
import { probePath } from './pathprobe.js';
import type { ForwardingRoutes } from './forwarding.js';
import type { Target } from './spec.js';

export interface CheckEnv {
  fwd: ForwardingRoutes;
  /** The next hop the data plane uses for a realserver (its MAC), when known. */
  nextHop(svc: Pick<VirtualService, 'protocol' | 'vip' | 'port'>, rs: Pick<Realserver, 'address'>): L2Next | undefined;
}

export async function checkTarget(t: Target, env: CheckEnv): Promise<ProbeResult> {
  let ep: Endpoint = { host: t.address, port: t.spec.port };
  let raw: (() => Promise<ProbeResult>) | undefined;
  if (t.spec.via === 'forwarding') {
    const e = await env.fwd.endpoint(t);
    // The default (via not written) falls back to the realserver's own address, saying why.
    if ('problem' in e && t.spec.viaDefault) return direct(t, `forwarding path not usable: ${e.problem}`);
    if ('problem' in e) return { ok: false, detail: `forwarding path: ${e.problem}` };
    raw = () => probeRawPath(t, env, e.localAddress, e.localPort, e.dev);
    if (e.raw) return raw();
    ep = { host: t.vip, port: t.spec.port, localAddress: e.localAddress, localPort: e.localPort };
  }
  if (t.spec.viaFallback) return direct(t, t.spec.viaFallback);
  let r: ProbeResult;
  try {
    r = await runProbe(t, ep);
  } catch (e) {
    r = { ok: false, detail: `probe error: ${errorText(e)}` };
  }
  // The VIP may have become local since it was last looked up (the kernel then answered the
  // probe itself): look again, and probe the way a local VIP needs.
  if (!r.ok && raw && await env.fwd.vipIsLocalNow(t.vip)) return raw();
  return r;
}

/** The check on the realserver's own address, its detail saying why not through the forwarding path. */
async function direct(t: Target, why: string): Promise<ProbeResult> {
  let r: ProbeResult;
  try {
    r = await runProbe(t, { host: t.address, port: t.spec.port });
  } catch (e) {
    r = { ok: false, detail: `probe error: ${errorText(e)}` };
  }
  return { ok: r.ok, detail: `${r.detail} (direct to ${t.address}: ${why})` };
}

/**
 * Forwarding path built by the probe itself (pathprobe.ts): LVS-Tun's encapsulated packet, or
 * LVS-DR's frame to the realserver's MAC when the VIP is local here; a SYN for tcp, the payload
 * for udp. http(s): the SYN through the path, then the HTTP check on the realserver's own
 * address within what is left of the timeout.
 */
async function probeRawPath(t: Target, env: CheckEnv, source: string, sport: number, dev: string): Promise<ProbeResult> {
  const s = t.spec;
  const started = Date.now();
  const udp = s.type === 'udp';
  let mac: string | undefined;
  if (t.method !== 'tun') {
    // The MAC the data plane sends this realserver's flows to; else the neighbour table's.
    mac = env.nextHop({ protocol: t.protocol, vip: t.vip, port: t.vport }, { address: t.address })?.mac ?? await neighbourMacAsync(t.address, dev);
    if (!mac) return { ok: false, detail: `forwarding path: no MAC known for ${t.address} on ${dev}` };
  }
  const r = await probePath({
    mode: t.method === 'tun' ? 'tun' : 'dr', proto: udp ? 'udp' : 'tcp', dev, rip: t.address, ...(mac ? { mac } : {}),
    source, sport, vip: t.vip, port: s.port, timeoutMs: s.timeoutMs,
    ...(udp ? { payload: s.payload } : {}), ...(udp && s.expect !== undefined ? { expect: s.expect } : {}),
  });
  if (!r.ok || (s.type !== 'http' && s.type !== 'https')) return r;
  const left = s.timeoutMs - (Date.now() - started);
  if (left <= 0) return { ok: false, detail: `${r.detail}; no time left for the ${s.type} check` };
  try {
    const h = await runProbe({ ...t, spec: { ...s, timeoutMs: left } }, { host: t.address, port: s.port });
    return { ok: h.ok, detail: `${r.detail}; ${h.detail}` };
  } catch (e) {
    return { ok: false, detail: `probe error: ${errorText(e)}` };
  }
}

