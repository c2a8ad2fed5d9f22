/**
 * `lvs-xdp drain --director [--wait] [--detach]` and `lvs-xdp undrain --director`: take the whole
 * director out of the ECMP group (README "Several directors"). The drain is recorded in the state
 * directory; `lvs-xdp run` withdraws every VIP within 250 ms; the data plane goes on forwarding
 * whatever still arrives. --wait then waits until no packet has been forwarded for --quiet
 * seconds (the routers moved its flows, or they ended); --detach detaches afterwards.
 */
import { spawnSync } from 'node:child_process';
import type { Director } from '../director/director.js';
import { writeDirectorDrain, clearDirectorDrain } from '../director/director-drain.js';
import { readRunHolder, holderAlive } from '../ops/runlock.js';
import { DEFAULT_ANNOUNCE_PROTOCOL, listArgs } from '../ops/announce.js';
import { LvsError, ExitCode } from '../errors.js';

export interface DirectorDrainOpts { wait?: boolean; detach?: boolean; quiet: number; timeout: number; json?: boolean }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Routes lvs-xdp run keeps in the announcement table (both families). */
function announcedRoutes(table: number, protocol: number): number {
  let n = 0;
  for (const f of [4, 6] as const) {
    const r = spawnSync('ip', listArgs({ table, protocol }, f), { encoding: 'utf8' });
    try {
      n += r.status === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as unknown[]).length : 0;
    } catch {
      // not JSON: counted as none
    }
  }
  return n;
}

function forwardedPackets(d: Director): bigint {
  return d.readStats().services.reduce((a, s) => a + s.packets, 0n);
}

export async function drainDirector(d: Director, o: DirectorDrainOpts, out: (l: string) => void): Promise<void> {
  const t0 = Date.now();
  const rec = writeDirectorDrain(d.paths.stateDir, new Date(t0).toISOString());
  out(`director drained (since ${rec.since}): lvs-xdp run withdraws every VIP; forwarding goes on`);
  const ann = d.config.settings?.announce;
  const holder = readRunHolder(d.paths.stateDir);
  if (!ann) out('note: no settings.announce in the running configuration: nothing here announces the VIPs (take the director out of the routers yourself)');
  else if (!holder || !holderAlive(holder)) out('note: no lvs-xdp run is running: no VIP is announced from here now; a run started while drained announces none');
  else {
    const proto = ann.protocol ?? DEFAULT_ANNOUNCE_PROTOCOL;
    const end = Date.now() + 10_000;
    while (announcedRoutes(ann.table, proto) > 0) {
      if (Date.now() > end) throw new LvsError(`lvs-xdp run (pid ${holder.pid}) did not withdraw the VIP routes of table ${ann.table} within 10 s`, 'FAILURE', ExitCode.FAILURE, { hint: 'see its log; lvs-xdp status shows the announcements' });
      await sleep(50);
    }
    out(`every VIP withdrawn by lvs-xdp run (pid ${holder.pid}) after ${Date.now() - t0} ms`);
  }
  if (!o.wait && !o.detach) return;
  const t1 = Date.now();
  let last = forwardedPackets(d);
  let quietSince = Date.now();
  while (Date.now() - quietSince < o.quiet * 1000) {
    if (Date.now() - t1 > o.timeout * 1000) {
      throw new LvsError(`packets are still forwarded after ${o.timeout} s: the routers still send flows here`, 'FAILURE', ExitCode.FAILURE,
        { hint: 'check the routers\' routes to the VIPs; lvs-xdp stats shows what is forwarded' + (o.detach ? '; not detached' : '') });
    }
    await sleep(200);
    const now = forwardedPackets(d);
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    }
  }
  out(`no packet forwarded for ${o.quiet} s (${((Date.now() - t1) / 1000).toFixed(1)} s after the withdrawal): the flows moved or ended`);
  if (!o.detach) return;
  const r = await d.detach();
  out(`detached from ${r.detached.join(', ') || 'nothing'}${r.removed ? '; removed the pinned state and snapshot' : ''}`);
}

export function undrainDirector(d: Director, out: (l: string) => void): void {
  if (!clearDirectorDrain(d.paths.stateDir)) throw new LvsError('the director is not drained', 'STATE', ExitCode.STATE, { hint: 'lvs-xdp status shows the drains' });
  out('director undrained: lvs-xdp run announces the VIPs again');
}
