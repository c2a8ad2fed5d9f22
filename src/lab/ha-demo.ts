/**
 * `lvs-xdp demo --ha`: the active/active lab of src/lab/ha.ts for a newcomer. Three directors
 * announce three VIPs (mh and sh over IPv4, mh over IPv6) to an ECMP router through BIRD; 24
 * long-lived connections run through them while one director dies (SIGKILL of run, detach) and
 * comes back, and another is drained and detached. Prints what the router sees, the failover
 * times and what happened to the connections; removes everything unless --keep.
 */
import { HaLab, streamReport, type HaStream } from './ha.js';
import { installCleanupHandlers, removeLab } from './lab.js';
import { netnsPath, waitFor } from './exec.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LvsError, PermissionError, ExitCode } from '../errors.js';

export const HA_DEMO_PREFIX = 'lvsha';

export interface HaDemoOptions { keep?: boolean; prefix?: string; out?: (t: string) => void }

export async function runHaDemo(opts: HaDemoOptions = {}): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const prefix = opts.prefix ?? HA_DEMO_PREFIX;
  if (process.getuid?.() !== 0) throw new PermissionError('the demo builds network namespaces and attaches XDP programs: run it as root');
  for (const tool of ['bird', 'birdc']) {
    if (!(process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => existsSync(join(d, tool)))) {
      throw new LvsError(`${tool} is not installed`, 'FAILURE', ExitCode.FAILURE, { hint: 'bash scripts/setup.sh installs BIRD 2 (Debian\'s bird2) with the rest of what the demo needs' });
    }
  }
  installCleanupHandlers();
  out(`Building the active/active lab: network namespaces ${prefix}-* (client, ECMP router, 3 directors, 3 realservers)\n`);
  const lab = await HaLab.create({ prefix, directors: 3, realservers: 3, bfdMs: 100, log: (l) => out(`  ${l}\n`) });
  let failures = 0;
  const streams: HaStream[] = [];
  try {
    out(`  router      ${lab.router.ns}: BIRD, one BGP session per director (BFD 100 ms), multipath routes hashed on L4\n`);
    out(`  directors   ${lab.directors.map((d) => `${d.ns} ${d.v4}`).join(', ')}: lvs-xdp attach + run, BIRD from \`lvs-xdp announce bird-config\`\n`);
    out(`  services    ${lab.services.map((s) => `${s.name} ${s.vip}:80`).join(', ')} (LVS-DR, same hash seed everywhere)\n\n`);
    await Promise.all(lab.directors.map((d) => lab.startDirector(d)));
    await lab.routerUntil(lab.directors);
    const route = async (vip: string): Promise<string> => (await lab.routerPaths(vip)).join(', ') || 'none';
    out(`The router's route to ${lab.services[0]!.vip}: via ${await route(lab.services[0]!.vip)}\n`);
    const digests = await Promise.all(lab.directors.map(async (d) => (await lab.lvsOk(d.ns, ['config', '--digest'])).split('\n')[0]!));
    out(`Table digests: ${new Set(digests).size === 1 ? 'equal on every director' : 'DIFFERENT'} (${digests[0]})\n\n`);
    if (new Set(digests).size !== 1) failures++;

    for (const s of lab.services) for (const src of s.vip.includes(':') ? lab.client.v6s : lab.client.v4s) streams.push(lab.stream(s.vip, src, 300, 50));
    await waitFor('every connection flowing', () => streams.every((s) => s.lines.length >= 4), 20_000, 50);
    out(`${streams.length} long-lived connections (one line every 50 ms) run from ${lab.client.ns} through the directors.\n`);

    const event = async (what: string, act: () => Promise<void>, until: () => Promise<number>): Promise<void> => {
      const counts = streams.map((s) => s.lines.length);
      const t0 = Date.now();
      // Timed from the start of the event: the router watched while it happens.
      const [ms] = await Promise.all([until(), act()]);
      await waitFor('the connections flowing again', () => streams.every((s, i) => s.code !== undefined || s.lines.length >= counts[i]! + 10), 20_000, 100);
      const r = streamReport(streams, t0, Date.now());
      const broken = r.broken.length + r.changed + r.stalled;
      failures += broken;
      out(`  ${what.padEnd(44)} router updated after ${String(ms).padStart(5)} ms; connections broken: ${broken} of ${r.streams}; longest pause a client saw: ${r.maxGapMs} ms\n`);
    };
    const [d1, d2, d3] = lab.directors as [typeof lab.directors[0], typeof lab.directors[0], typeof lab.directors[0]];
    await event('d1 dies (SIGKILL of run, then detach)', () => lab.killDirector(d1), () => lab.routerUntil([d2, d3]));
    await event('d1 comes back (attach, run)', () => lab.startDirector(d1), () => lab.routerUntil(lab.directors));
    await event('d3 drained (lvs-xdp drain --director --detach)', async () => { await lab.lvsOk(d3.ns, ['drain', '--director', '--detach', '--quiet', '1']); }, () => lab.routerUntil([d1, d2]));
    out(`\nThe router's route to ${lab.services[0]!.vip} now: via ${await route(lab.services[0]!.vip)}\n`);
    out(failures === 0 ? 'No connection was broken: every director sends a flow to the same realserver (consistent hashing, same tables).\n'
      : `${failures} connection(s) broken: see the lines above.\n`);
    out('rr, wrr and persistent services would lose moved flows here: they need connection synchronisation (README "Several directors").\n');
    if (opts.keep) {
      lab.kept = true;
      out(`\nThe lab stays up (--keep). Explore it:\n`);
      out(`  nsenter --net=${netnsPath(lab.router.ns)} ip route show ${lab.services[0]!.vip}\n`);
      out(`  birdc -s ${lab.dir}/bird-rt.sock show protocols\n`);
      out(`  nsenter --net=${netnsPath(d2.ns)} lvs-xdp status\n`);
      out(`  nsenter --net=${netnsPath(lab.client.ns)} curl http://${lab.services[0]!.vip}/\n`);
      out(`Remove it with: lvs-xdp demo --ha --teardown\n`);
    }
  } finally {
    for (const s of streams) s.kill();
    if (!opts.keep) {
      lab.stopAll();
      lab.destroy();
      out('\nRemoved the lab.\n');
    }
  }
  return failures === 0 ? 0 : 1;
}

export function haDemoTeardown(prefix = HA_DEMO_PREFIX): string[] {
  return removeLab(prefix);
}
