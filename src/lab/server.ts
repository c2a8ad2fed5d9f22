/**
 * The lab's realserver program: one process per realserver namespace, started by the lab as
 * `node dist/src/lab/server.js --name rs1 --http-port 80 --udp-port 9000 --udp-bind VIP ...`.
 *
 * HTTP/1.1 on every address of the namespace (keep-alive on, 60 s idle):
 *   GET /                          -> "<name>\n" (header X-Realserver: <name>)
 *   GET /stream?seconds=S&ms=M     -> chunked, one line "<name> <i>\n" every M ms for S seconds
 *   GET /slow?ms=M                 -> "<name>\n" after M ms
 * UDP echo on each --udp-bind address (bound to the VIP itself, so that answers leave from the
 * VIP as LVS-DR/Tun require): answers "<name> <datagram>".
 * Writes --ready FILE once everything listens; exits on SIGTERM / SIGINT.
 */
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

interface Args { name: string; httpPort: number; udpPort: number; udpBind: string[]; ready?: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { name: 'realserver', httpPort: 80, udpPort: 9000, udpBind: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1] ?? '';
    if (k === '--name') a.name = v;
    else if (k === '--http-port') a.httpPort = Number(v);
    else if (k === '--udp-port') a.udpPort = Number(v);
    else if (k === '--udp-bind') a.udpBind.push(v);
    else if (k === '--ready') a.ready = v;
    else throw new Error(`unknown argument ${k}`);
    i++;
  }
  return a;
}

function clamp(v: string | null, def: number, max: number): number {
  const n = Number(v ?? def);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, max) : def;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const name = args.name;
  const timers = new Set<NodeJS.Timeout>();

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('X-Realserver', name);
    if (url.pathname === '/stream') {
      const seconds = clamp(url.searchParams.get('seconds'), 10, 3600);
      const ms = Math.max(10, clamp(url.searchParams.get('ms'), 200, 60_000));
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      let i = 0;
      const end = Date.now() + seconds * 1000;
      const tick = (): void => {
        res.write(`${name} ${i++}\n`);
        if (Date.now() >= end) {
          clearInterval(t);
          timers.delete(t);
          res.end();
        }
      };
      const t = setInterval(tick, ms);
      timers.add(t);
      tick();
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
      return;
    }
    if (url.pathname === '/slow') {
      const t = setTimeout(() => {
        timers.delete(t);
        res.end(`${name}\n`);
      }, clamp(url.searchParams.get('ms'), 500, 60_000));
      timers.add(t);
      return;
    }
    res.setHeader('Content-Type', 'text/plain');
    res.end(`${name}\n`);
  });
  http.keepAliveTimeout = 60_000;
  http.headersTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    // '::' with ipv6Only false: IPv4 and IPv6, every address of the namespace (the VIPs on lo too).
    http.listen({ host: '::', port: args.httpPort, ipv6Only: false }, resolve);
  });

  const sockets = await Promise.all(args.udpBind.map((addr) => new Promise<ReturnType<typeof createSocket>>((resolve, reject) => {
    const s = createSocket({ type: isIPv6(addr) ? 'udp6' : 'udp4' });
    s.on('message', (msg, rinfo) => {
      s.send(Buffer.concat([Buffer.from(`${name} `), msg]), rinfo.port, rinfo.address);
    });
    s.once('error', reject);
    s.bind(args.udpPort, addr, () => resolve(s));
  })));

  const stop = (): void => {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.close();
    http.closeAllConnections();
    http.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (args.ready) writeFileSync(args.ready, `${process.pid}\n`);
}

main().catch((e: unknown) => {
  console.error(`lab server: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
