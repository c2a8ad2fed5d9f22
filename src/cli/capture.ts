/**
 * `lvs-xdp capture [-w FILE] [--service VIP:PORT] [--realserver RIP[:PORT]] [--outcome NAME,...]
 * [-c COUNT]`: the frames the director handled, with its decision, as pcapng (-w) or one line
 * each. Filtered in the kernel (bpf/lvs_capture.h); the capture is switched off on exit.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { Command, Option } from 'commander';
import { statePaths } from '../director/paths.js';
import { assertBpffs, PROG_PIN } from '../director/lifecycle.js';
import { readSnapshot } from '../director/snapshot.js';
import { openPinned, closeFd, ifName } from '../native/index.js';
import { parseAddrPort } from '../ipvsadm/index.js';
import { formatAddrPort } from '../model/address.js';
import { splitRealId } from '../dataplane/compile.js';
import { ConfigError, NotAttachedError } from '../errors.js';
import { Capture, outcomeIndexes, XDP_ACTIONS, CAPTURE, type CaptureFilter, type CaptureRecord } from '../capture/capture.js';
import { PcapngWriter } from '../capture/pcapng.js';
import { withStateOptions, stateOptions, type StateOpts } from './common.js';

interface CaptureOpts extends StateOpts {
  write?: string; service?: string; realserver?: string; outcome?: string; count?: number; snaplen: number; rate: number; duration?: number;
}

function positive(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new ConfigError(`${JSON.stringify(v)} is not an integer in 1..${max}`, { field: `--${name}` });
    return Number(v);
  };
}

interface Names { services: Map<number, string>; reals: Map<number, string> }

/** The filter, from names as the operator gives them, against the running allocation. */
export function captureFilter(o: Pick<CaptureOpts, 'service' | 'realserver' | 'outcome'>, alloc: { services: Record<string, number>; reals: Record<string, { index: number }> }): CaptureFilter {
  const f: CaptureFilter = {};
  let svcKey: string | undefined;
  if (o.service !== undefined) {
    const proto = /^(tcp|udp)[ /:]/i.exec(o.service)?.[1]?.toLowerCase();
    const { address, port } = parseAddrPort('--service', proto ? o.service.slice(4) : o.service);
    if (port === undefined) throw new ConfigError('a service is VIP:PORT', { field: '--service' });
    const want = formatAddrPort(address, port);
    const hits = Object.keys(alloc.services).filter((k) => k.endsWith(` ${want}`) && (!proto || k.startsWith(`${proto} `)));
    if (hits.length === 0) throw new ConfigError(`no virtual service ${o.service}`, { field: '--service', hint: `services: ${Object.keys(alloc.services).join(', ') || 'none'}` });
    if (hits.length > 1) throw new ConfigError(`${o.service} is ${hits.join(' and ')}`, { field: '--service', hint: 'say which: --service tcp/VIP:PORT or udp/VIP:PORT' });
    svcKey = hits[0]!;
    f.svcId = alloc.services[svcKey]!;
  }
  if (o.realserver !== undefined) {
    const { address, port } = parseAddrPort('--realserver', o.realserver);
    const hits = Object.entries(alloc.reals).filter(([k]) => {
      const { service, rip } = splitRealId(k);
      return rip === address && (port === undefined || service.endsWith(`:${port}`)) && (svcKey === undefined || service === svcKey);
    });
    if (hits.length === 0) throw new ConfigError(`no realserver ${o.realserver}${svcKey ? ` in ${svcKey}` : ''}`, { field: '--realserver' });
    if (hits.length > 1) throw new ConfigError(`${o.realserver} serves ${hits.map(([k]) => splitRealId(k).service).join(' and ')}`, { field: '--realserver', hint: 'add --service VIP:PORT' });
    f.realIdx = hits[0]![1].index;
  }
  if (o.outcome !== undefined) f.outcomes = outcomeIndexes(o.outcome.split(',').map((s) => s.trim()).filter(Boolean));
  return f;
}

/** The decision, as the packet's comment and the text line. */
export function describe(r: CaptureRecord, names: Names): string {
  const outcome = r.counters.filter((c) => c.kind !== 'event').map((c) => c.name.toLowerCase());
  const events = r.counters.filter((c) => c.kind === 'event').map((c) => c.name.toLowerCase());
  return [
    'lvs-xdp:',
    `service ${r.svcId === undefined ? '-' : names.services.get(r.svcId) ?? `#${r.svcId}`}`,
    `realserver ${r.realIdx === undefined ? '-' : names.reals.get(r.realIdx) ?? `#${r.realIdx}`}`,
    `outcome ${outcome.join(',') || '-'}`,
    ...(events.length ? [`events ${events.join(',')}`] : []),
    `action ${XDP_ACTIONS[r.action] ?? r.action}`,
  ].join(' ');
}

export function captureCommand(): Command {
  return withStateOptions(new Command('capture'))
    .description('capture the frames the director handles, with its decision (service, realserver, outcome), as pcapng')
    .option('-w, --write <file>', 'write pcapng to FILE (- for standard output) instead of one line per frame')
    .option('--service <vip:port>', 'only this virtual service\'s packets (tcp/VIP:PORT when both protocols have it)')
    .option('--realserver <rip[:port]>', 'only packets sent to this realserver')
    .option('--outcome <names>', 'only packets that counted one of these lvs_counters entries (lvs-xdp counters lists them), comma-separated')
    .option('-c, --count <n>', 'stop after N frames', positive('count'))
    .addOption(new Option('--snaplen <bytes>', `bytes of each frame kept (at most ${CAPTURE.snap})`).argParser(positive('snaplen', CAPTURE.snap)).default(CAPTURE.snap))
    .addOption(new Option('--rate <n>', 'at most N frames per second per CPU (the rest are counted, not recorded)').argParser(positive('rate')).default(1000))
    .option('--duration <seconds>', 'stop after this long', positive('duration'))
    .action(async (o: CaptureOpts) => {
      const paths = statePaths(stateOptions(o));
      assertBpffs(paths);
      const snap = readSnapshot(paths.snapshot);
      if (!snap) throw new NotAttachedError(`no director is attached (no state at ${paths.snapshot})`, { hint: 'attach one with `lvs-xdp attach IFACE`' });
      const alloc = snap.applied.allocation;
      const filter = captureFilter(o, alloc);
      const names: Names = {
        services: new Map(Object.entries(alloc.services).map(([k, v]) => [v, k])),
        reals: new Map(Object.entries(alloc.reals).map(([k, v]) => [v.index, splitRealId(k).rip])),
      };
      const progFd = openPinned(`${paths.pinDir}/${PROG_PIN}`);
      let cap: Capture;
      try {
        cap = Capture.open(progFd);
      } finally {
        closeFd(progFd);
      }
      if (cap.running) process.stderr.write('lvs-xdp: a capture was already on (another one runs, or one was killed): taking it over\n');
      let out: WriteStream | NodeJS.WriteStream | undefined;
      if (o.write !== undefined) out = o.write === '-' ? process.stdout : createWriteStream(o.write);
      const ifnames = new Map<number, string>();
      const ifname = (i: number): string => {
        if (!ifnames.has(i)) {
          let n = `ifindex ${i}`;
          try {
            n = ifName(i);
          } catch {
            // gone
          }
          ifnames.set(i, n);
        }
        return ifnames.get(i)!;
      };
      const pcap = out ? new PcapngWriter((b) => out!.write(b), o.snaplen, ifname) : undefined;
      // bpf_ktime_get_ns and process.hrtime are both CLOCK_MONOTONIC: one offset makes wall time.
      const epochNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
      let stop = false;
      const onSignal = (): void => { stop = true; };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const until = o.duration ? Date.now() + o.duration * 1000 : Infinity;
      let n = 0;
      cap.start(filter, o.snaplen, o.rate);
      try {
        process.stderr.write(`lvs-xdp: capturing${o.service ? ` service ${o.service}` : ''}${o.realserver ? ` realserver ${o.realserver}` : ''}${o.outcome ? ` outcome ${o.outcome}` : ''} (snaplen ${o.snaplen}, at most ${o.rate}/s per CPU)\n`);
        while (!stop && Date.now() < until && (o.count === undefined || n < o.count)) {
          const recs = cap.poll(100, o.count === undefined ? 256 : Math.min(256, o.count - n));
          for (const r of recs) {
            const ts = epochNs + r.tsNs;
            const text = describe(r, names);
            if (pcap) pcap.packet(r.ifindex, ts, r.data, r.len, text);
            else process.stdout.write(`${new Date(Number(ts / 1_000_000n)).toISOString()} ${ifname(r.ifindex)} len ${r.len} ${text}\n`);
            n++;
          }
          await new Promise((res) => setImmediate(res)); // lets SIGINT through
        }
      } finally {
        cap.stop();
        const m = cap.missed();
        cap.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (out && out !== process.stdout) await new Promise((res) => (out as WriteStream).end(res));
        process.stderr.write(`lvs-xdp: ${n} frames captured${m.limited ? `, ${m.limited} over the rate` : ''}${m.lost ? `, ${m.lost} lost (ring full)` : ''}\n`);
      }
    });
}
