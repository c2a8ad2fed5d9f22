/**
 * End to end, against what users would pick instead: the same client and realservers (nginx,
 * one worker each) in a namespace lab (src/lab, prefix lvsb-e2e), the director role played in
 * turn by lvs-xdp DR, lvs-xdp Tun, an nftables DNAT load balancer (numgen) and HAProxy in TCP
 * mode, each in a fresh lab with the same addresses, with the client talking straight to one realserver as the baseline. wrk measures
 * requests per second and latency, with keep-alive and with a new connection per request. CPU:
 * the whole machine's busy time from /proc/stat during each run, per request; the director's
 * share is that minus the baseline's (the client, servers and veths cost the same in every
 * role; what differs is the director). Needs wrk, haproxy, nft and nginx (scripts/bench-setup.sh).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../src/lab/lab.js';
import { spawnIn, shIn, sleep } from '../src/lab/exec.js';
import { median } from './lib/stats.js';

export interface E2eRun { rps: number; p50Ms: number; p99Ms: number; requests: number; errors: number; cpuUsPerReq: number }
export interface E2eRow {
  director: string; mode: string;
  rps: number; rpsMin: number; rpsMax: number; p50Ms: number; p99Ms: number; cpuUsPerReq: number; directorUsPerReq?: number;
  errors: number; vsHaproxy?: number; vsNft?: number;
}
export type E2eResult = { rows: E2eRow[]; seconds: number; connections: number } | { skipped: string };

const TOOLS = ['wrk', 'haproxy', 'nft', 'nginx'];

function missingTools(): string[] {
  return TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
}

function cpuBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  return f.reduce((a, b) => a + b, 0) - idle; // USER_HZ ticks
}

function parseWrk(out: string): { requests: number; rps: number; p50Ms: number; p99Ms: number; errors: number } {
  const ms = (s: string | undefined) => {
    const m = /([\d.]+)(us|ms|s)/.exec(s ?? '');
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50Ms: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1]), p99Ms: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    errors: non2xx + (errs ? errs.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0),
  };
}

/** Waits until something listens on addr:port in the namespace (ss), or throws with `why()`. */
async function listening(ns: string, addrPort: string, why: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = await shIn(ns, 'ss -ltnH');
    if (out.split('\n').some((l) => l.split(/\s+/)[3] === addrPort)) return;
    await sleep(50);
  }
  let detail = '';
  try { detail = why(); } catch { /* no log */ }
  throw new Error(`nothing listens on ${addrPort} in ${ns}: ${detail.slice(-1000)}`);
}

type LabRun = (lab: Lab, measure: (director: string, url: string) => Promise<void>) => Promise<void>;

export async function runE2eBench(opts: { seconds: number; rounds: number; connections?: number; log?: (s: string) => void }): Promise<E2eResult> {
  const missing = missingTools();
  if (missing.length) return { skipped: `missing ${missing.join(', ')}: run bash scripts/bench-setup.sh` };
  const log = opts.log ?? (() => undefined);
  const conns = opts.connections ?? 32;
  const rows: E2eRow[] = [];

  /** A fresh lab (same addresses every time) with nginx on the realservers, for one role: what
   *  one director leaves behind (conntrack in its namespace, realserver TIME_WAITs) must not
   *  weigh on the next (after nftables NAT, HAProxy's short connections fell from ~4,300 to ~670
   *  req/s; nftables itself from ~8,000 to ~150 after the other roles). */
  const withLab = async (run: LabRun) => {
    const lab = await Lab.create({ prefix: 'lvsb-e2e', clients: 1, clientAddresses: 1, realservers: 2 });
    try {
      // Short connections from one client address: without reuse of TIME_WAIT ports the
      // connecting sides (the client, and HAProxy toward the realservers) run out of ports
      // within seconds at these rates (HAProxy fell to ~270 req/s). Same settings in every role.
      for (const ns of [lab.clients[0]!.ns, lab.director.ns]) {
        await shIn(ns, 'sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"');
      }
      for (const r of lab.realservers) {
        const conf = join(lab.dir, `nginx-${r.role}.conf`);
        writeFileSync(conf, [
          'worker_processes 1;', `pid ${lab.dir}/nginx-${r.role}.pid;`, `error_log ${lab.dir}/nginx-${r.role}.err;`, 'daemon off;',
          'events { worker_connections 4096; }',
          'http { access_log off; keepalive_requests 1000000;',
          `  client_body_temp_path ${lab.dir}/nb-${r.role}; proxy_temp_path ${lab.dir}/np-${r.role};`,
          `  server { listen 80 backlog=4096; location / { return 200 "${r.role}\\n"; } } }`, '',
        ].join('\n'));
        spawnIn(r.ns, 'nginx', ['-c', conf], { detached: true, stdio: 'ignore' }).unref();
      }
      for (const r of lab.realservers) await listening(r.ns, '0.0.0.0:80', () => readFileSync(join(lab.dir, `nginx-${r.role}.err`), 'utf8'));
      const wrk = async (url: string, close: boolean): Promise<E2eRun> => {
        const args = ['-t1', `-c${conns}`, `-d${opts.seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), url];
        const c0 = cpuBusy();
        const r = await lab.inClient(0, 'wrk', args, (opts.seconds + 30) * 1000);
        const busy = cpuBusy() - c0;
        if (r.code !== 0) throw new Error(`wrk ${args.join(' ')}: ${r.stderr || r.stdout}`);
        const w = parseWrk(r.stdout);
        if (!(w.requests > 0)) throw new Error(`wrk: no requests: ${r.stdout}`);
        return { ...w, cpuUsPerReq: (busy * 1e6) / 100 / w.requests };
      };
      await run(lab, async (director: string, url: string) => {
        for (const [mode, close] of [['keep-alive', false], ['new connection per request', true]] as const) {
          await wrk(url, close); // warm-up (connections, ARP, conntrack)
          const runs: E2eRun[] = [];
          for (let i = 0; i < opts.rounds; i++) runs.push(await wrk(url, close));
          const rps = runs.map((x) => x.rps);
          rows.push({
            director, mode, rps: median(rps), rpsMin: Math.min(...rps), rpsMax: Math.max(...rps),
            p50Ms: median(runs.map((x) => x.p50Ms)), p99Ms: median(runs.map((x) => x.p99Ms)),
            cpuUsPerReq: median(runs.map((x) => x.cpuUsPerReq)), errors: runs.reduce((a, x) => a + x.errors, 0),
          });
          log(`e2e ${director} ${mode}: ${median(rps).toFixed(0)} req/s`);
        }
      });
    } finally {
      lab.destroy();
    }
  };

  // Baseline: the client straight to one realserver.
  await withLab(async (lab, measure) => measure('none (client to one realserver directly)', `http://${lab.realservers[0]!.v4}/`));

  // lvs-xdp, DR and Tun at once (two VIPs), realservers set up for both.
  await withLab(async (lab, measure) => {
    const v = lab.vips, rs = lab.realservers;
    await lab.attachDirector({ mode: 'native' });
    for (const r of rs) {
      await lab.setupRealserver(r, 'dr', [v.dr4]);
      await lab.setupRealserver(r, 'tun', [v.tun4]);
    }
    const rules = [`-A -t ${v.dr4}:80 -s mh`, ...rs.map((r) => `-a -t ${v.dr4}:80 -r ${r.v4} -g`),
      `-A -t ${v.tun4}:80 -s mh`, ...rs.map((r) => `-a -t ${v.tun4}:80 -r ${r.v4} -i`)];
    await lab.lvsOk(['-R'], lab.director.ns, `${rules.join('\n')}\n`);
    await measure('lvs-xdp DR', `http://${v.dr4}/`);
    await measure('lvs-xdp Tun', `http://${v.tun4}/`);
  });

  // HAProxy, TCP mode, round robin, one thread, on the director's VIP.
  await withLab(async (lab, measure) => {
    const v = lab.vips;
    const hcfg = join(lab.dir, 'haproxy.cfg');
    writeFileSync(hcfg, [
      'global', '  maxconn 8000', '  nbthread 1', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s',
      'frontend f', `  bind ${v.dr4}:80`, '  default_backend b', 'backend b', '  balance roundrobin',
      ...lab.realservers.map((r) => `  server ${r.role} ${r.v4}:80`), '',
    ].join('\n'));
    const hlog = join(lab.dir, 'haproxy.log');
    const fd = openSync(hlog, 'a');
    spawnIn(lab.director.ns, 'haproxy', ['-f', hcfg, '-db'], { detached: true, stdio: ['ignore', fd, fd] }).unref();
    closeSync(fd);
    await listening(lab.director.ns, `${v.dr4}:80`, () => readFileSync(hlog, 'utf8'));
    await measure('HAProxy (TCP mode)', `http://${v.dr4}/`);
  });

  // nftables: DNAT to numgen inc mod N in prerouting; answers back through the director.
  await withLab(async (lab, measure) => {
    const v = lab.vips, rs = lab.realservers;
    await shIn(lab.director.ns, [
      'sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0',
      `nft -f - <<'EOF'
table ip lvsb_lb {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${v.dr4} tcp dport 80 dnat to numgen inc mod ${rs.length} map { ${rs.map((r, i) => `${i} : ${r.v4}`).join(', ')} }
  }
}
EOF`,
    ].join('\n'));
    for (const r of rs) await shIn(r.ns, `ip route replace ${lab.clients[0]!.v4}/32 via ${lab.director.v4}`);
    await measure('nftables DNAT (numgen)', `http://${v.dr4}/`);
  });

  // Director's share of CPU per request, and ratios to HAProxy and nftables.
  for (const row of rows) {
    const base = rows.find((x) => x.director.startsWith('none') && x.mode === row.mode)!;
    if (row !== base) row.directorUsPerReq = row.cpuUsPerReq - base.cpuUsPerReq;
  }
  for (const row of rows) {
    const hap = rows.find((x) => x.director.startsWith('HAProxy') && x.mode === row.mode)!;
    const nft = rows.find((x) => x.director.startsWith('nftables') && x.mode === row.mode)!;
    if (row.director.startsWith('lvs-xdp')) {
      row.vsHaproxy = row.rps / hap.rps;
      row.vsNft = row.rps / nft.rps;
    }
  }
  return { rows, seconds: opts.seconds, connections: conns };
}
