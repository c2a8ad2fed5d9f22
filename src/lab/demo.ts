/**
 * `lvs-xdp demo`: builds the namespace lab (two clients with four addresses each, a director,
 * three realservers on one bridge), attaches lvs-xdp to the director's eth0 in native XDP mode,
 * configures DR and Tun services over IPv4 and IPv6 plus a UDP service with the ipvsadm-style CLI,
 * sends real requests (curl, and UDP datagrams) from the clients to the VIPs and shows what
 * answered, the `-L -n --stats` view and the non-zero counters. Everything is removed at the end,
 * on Ctrl-C and on failure, unless --keep.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, installCleanupHandlers, removeLab, type RealserverHost } from './lab.js';
import { installRoot, netnsPath } from './exec.js';
import { LvsError, PermissionError, ExitCode } from '../errors.js';

export const DEMO_PREFIX = 'lvsdemo';

export interface DemoOptions {
  keep?: boolean;
  /** Namespace prefix (tests use their own so as not to meet a user's demo). */
  prefix?: string;
  /** HTTP requests per client address and service (default 15). */
  requests?: number;
  out?: (text: string) => void;
}

interface DemoService {
  label: string;
  proto: 'tcp' | 'udp';
  vip: string;
  method: 'DR' | 'Tun';
  weights: number[];
  url?: string;
}

function addrPort(vip: string, port: number): string {
  return vip.includes(':') ? `[${vip}]:${port}` : `${vip}:${port}`;
}

/** Columns before `leftCols` are left-aligned, the rest right-aligned. */
function table(rows: string[][], leftCols = 1, indent = '  '): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function checkPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new PermissionError('the demo builds network namespaces and attaches XDP programs: run it as root');
  const root = installRoot();
  for (const f of ['bpf/lvs_director.o', 'bpf/floors.o', 'bpf/lvs_decap.o', 'dist/src/lab/server.js', 'dist/src/lab/client.js']) {
    if (!existsSync(join(root, f))) {
      throw new LvsError(`${f} is missing`, 'FAILURE', ExitCode.FAILURE, { hint: 'run `npm run demo` (it runs scripts/setup.sh first) or `bash scripts/setup.sh`' });
    }
  }
  for (const tool of ['ip', 'nsenter', 'ethtool', 'curl']) {
    const found = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => {
      try {
        accessSync(join(d, tool), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (!found) throw new LvsError(`${tool} is not installed`, 'FAILURE', ExitCode.FAILURE, { hint: 'bash scripts/setup.sh installs what the demo needs (iproute2, util-linux, ethtool, curl)' });
  }
}

/** Removes a lab left by `demo --keep` (or a killed demo). */
export function demoTeardown(opts: { prefix?: string; out?: (t: string) => void } = {}): string[] {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const removed = removeLab(opts.prefix ?? DEMO_PREFIX);
  out(removed.length ? `removed ${removed.join(' ')} and their lvs-xdp state\n` : `no ${opts.prefix ?? DEMO_PREFIX} lab to remove\n`);
  return removed;
}

/** Runs the demo; resolves with the exit code (1 when some request failed or a realserver got nothing). */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const prefix = opts.prefix ?? DEMO_PREFIX;
  const perAddress = opts.requests ?? 15;
  checkPrerequisites();
  installCleanupHandlers();
  const t0 = Date.now();
  out(`Building the lab: network namespaces ${prefix}-* (2 clients, director, 3 realservers, one bridge)\n`);
  const lab = await Lab.create({
    prefix, clients: 2, clientAddresses: 4, realservers: 3, log: (l) => out(`  ${l}\n`),
  });
  let ok = false;
  try {
    const v = lab.vips;
    const rs = lab.realservers;
    out(`  clients     ${lab.clients.map((c) => `${c.ns} ${c.v4s[0]}-${c.v4s.at(-1)!.split('.').pop()} ${c.v6s[0]}-${c.v6s.at(-1)!.split(':').pop()}`).join('\n              ')}\n`);
    out(`  director    ${lab.director.ns} eth0 ${lab.director.v4} ${lab.director.v6}, VIPs ${v.dr4} ${v.dr6} (DR) ${v.tun4} ${v.tun6} (Tun)\n`);
    out(`  realservers ${rs.map((r) => `${r.ns} ${r.v4} ${r.v6}`).join('\n              ')}\n\n`);

    out(`$ lvs-xdp attach eth0 --mode native   (in ${lab.director.ns}; tunnel source ${lab.director.v4} / ${lab.director.v6})\n`);
    out(`${(await lab.attachDirector({ mode: 'native' })).split('\n')[0]}\n`);

    out(`$ lvs-xdp realserver setup --mode dr --vip ${v.dr4} --vip ${v.dr6}; ... --mode tun --vip ${v.tun4} --vip ${v.tun6}   (on ${rs.map((r) => r.role).join(', ')})\n`);
    await Promise.all(rs.map(async (r: RealserverHost) => {
      await lab.setupRealserver(r, 'dr', [v.dr4, v.dr6]);
      await lab.setupRealserver(r, 'tun', [v.tun4, v.tun6]);
    }));
    out('  VIPs on lo, arp_ignore=1 / arp_announce=2, decapsulation XDP program on eth0, rp_filter relaxed\n');
    await lab.startServers({ udpVips: [v.dr4, v.dr6] });
    out(`  HTTP server (answers its own name) and UDP echo started on ${rs.map((r) => r.role).join(', ')}\n\n`);

    const services: DemoService[] = [
      { label: `tcp ${addrPort(v.dr4, 80)}`, proto: 'tcp', vip: v.dr4, method: 'DR', weights: [1, 1, 1] },
      { label: `tcp ${addrPort(v.dr6, 80)}`, proto: 'tcp', vip: v.dr6, method: 'DR', weights: [1, 1, 1] },
      { label: `tcp ${addrPort(v.tun4, 80)}`, proto: 'tcp', vip: v.tun4, method: 'Tun', weights: [1, 2, 3] },
      { label: `tcp ${addrPort(v.tun6, 80)}`, proto: 'tcp', vip: v.tun6, method: 'Tun', weights: [1, 2, 3] },
      { label: `udp ${addrPort(v.dr4, 9000)}`, proto: 'udp', vip: v.dr4, method: 'DR', weights: [1, 1, 1] },
    ];
    const rules: string[] = [];
    for (const s of services) {
      const flag = s.proto === 'tcp' ? '-t' : '-u';
      const svc = addrPort(s.vip, s.proto === 'tcp' ? 80 : 9000);
      rules.push(`-A ${flag} ${svc} -s mh`);
      rs.forEach((r, i) => rules.push(`-a ${flag} ${svc} -r ${s.vip.includes(':') ? r.v6 : r.v4} ${s.method === 'DR' ? '-g' : '-i'} -w ${s.weights[i]}`));
      if (s.proto === 'tcp') s.url = `http://${svc.replace(/:80$/, '')}/`;
    }
    out(`$ lvs-xdp -R <<EOF\n${rules.join('\n')}\nEOF\n`);
    await lab.lvsOk(['-R'], lab.director.ns, `${rules.join('\n')}\n`);

    const sources = lab.clients.flatMap((c, ci) => c.v4s.map((a, i) => ({ client: ci, v4: a, v6: c.v6s[i]! })));
    const udpPerAddress = Math.max(1, Math.round(perAddress / 2));
    out(`\nSending ${perAddress} HTTP requests per client address (${sources.length} addresses in ${lab.clients.length} namespaces, curl, a new connection each)\nto each TCP VIP, and ${udpPerAddress} UDP datagrams per address (a new source port each) to ${addrPort(v.dr4, 9000)} ...\n`);
    const answers = new Map<string, Map<string, number>>();
    const failed = new Map<string, number>();
    for (const s of services.filter((x) => x.url)) {
      const counts = new Map<string, number>();
      // One curl per client address, the addresses of a namespace in parallel.
      const results = await Promise.all(sources.map((src) => lab.curl(s.url!, { client: src.client, source: s.vip.includes(':') ? src.v6 : src.v4, count: perAddress })));
      for (const name of results.flat()) {
        if (name === '') failed.set(s.label, (failed.get(s.label) ?? 0) + 1);
        else counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      answers.set(s.label, counts);
    }
    const udpSvc = services.find((x) => x.proto === 'udp')!;
    const udpCounts = new Map<string, number>();
    for (let ci = 0; ci < lab.clients.length; ci++) {
      const r = await lab.udp({ host: v.dr4, port: 9000, sources: lab.clients[ci]!.v4s, count: udpPerAddress }, ci);
      for (const [k, n] of Object.entries(r.counts)) udpCounts.set(k, (udpCounts.get(k) ?? 0) + n);
      if (r.lost) failed.set(udpSvc.label, (failed.get(udpSvc.label) ?? 0) + r.lost);
    }
    answers.set(udpSvc.label, udpCounts);

    const rows: string[][] = [['service', 'method', ...rs.map((r) => `${r.role} (weight)`), 'failed']];
    let starved = 0;
    for (const s of services) {
      const c = answers.get(s.label) ?? new Map<string, number>();
      rows.push([s.label, s.method, ...rs.map((r, i) => {
        const n = c.get(r.role) ?? 0;
        if (n === 0) starved++;
        return `${n} (${s.weights[i]})`;
      }), String(failed.get(s.label) ?? 0)]);
    }
    out(`\nWhich realserver answered (each answers with its own name):\n${table(rows, 2)}\n`);

    out(`\n$ lvs-xdp -L -n --stats   (in ${lab.director.ns}; DR and Tun: answers go from the realservers straight to the clients, so OutPkts stay 0 as in IPVS)\n`);
    out(await lab.lvsOk(['-L', '-n', '--stats']));
    const stats = await lab.lvsOk(['stats', '-i', '0']);
    const counters = stats.slice(stats.indexOf('\ncounter')).trim();
    out(`\nNon-zero counters (lvs-xdp stats; \`lvs-xdp counters\` explains each):\n${counters.split('\n').map((l) => `  ${l}`).join('\n')}\n`);

    const totalFailed = [...failed.values()].reduce((a, b) => a + b, 0);
    ok = totalFailed === 0 && starved === 0;
    out(`\n${ok ? 'OK' : 'PROBLEM'}: ${totalFailed} failed request(s), ${starved} realserver/service pair(s) without answers, in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

    if (opts.keep) {
      lab.kept = true;
      const lvs = (ns: string, args: string) => lab.shellCommand(ns, args);
      const c1 = lab.clients[0]!;
      out([
        '',
        `The lab stays up (--keep). Explore it (as root):`,
        `  ${lvs(lab.director.ns, '-L -n')}`,
        `  ${lvs(lab.director.ns, 'stats --watch')}`,
        `  ${lvs(lab.director.ns, '-L -n -c')}`,
        `  ${lvs(lab.director.ns, 'doctor')}`,
        `  nsenter --net=${netnsPath(c1.ns)} curl http://${v.dr4}/`,
        `  nsenter --net=${netnsPath(c1.ns)} curl --interface ${c1.v4s[1]} http://${v.tun4}/`,
        `  nsenter --net=${netnsPath(c1.ns)} curl 'http://[${v.dr6}]/'`,
        `  ${lvs(rs[0]!.ns, `realserver check --mode dr --vip ${v.dr4}`)}`,
        `  ${lvs(lab.director.ns, `-e -t ${v.dr4}:80 -r ${rs[0]!.v4} -g -w 0`)}     (quiesce rs1)`,
        `  ${lvs(lab.director.ns, 'detach')}`,
        'Remove everything:',
        `  ${lab.shellCommand(undefined, `demo --teardown${prefix === DEMO_PREFIX ? '' : ` --prefix ${prefix}`}`)}`,
        '',
      ].join('\n'));
    } else {
      out(`\nRemoving the lab (namespaces ${prefix}-*, lvs-xdp state) ...`);
    }
  } finally {
    lab.destroy();
  }
  if (!opts.keep) out(' done\n');
  return ok ? ExitCode.OK : ExitCode.FAILURE;
}
