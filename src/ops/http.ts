/**
 * `run`'s HTTP listener: /metrics (Prometheus text), /api/status (JSON), the status page at `/`
 * (rendered complete on the server) and /api/status.html (its content, which the page's script
 * swaps in every second), and /healthz. GET and HEAD only; an error answers 500 and is logged,
 * never ends `run`.
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { errorText } from '../errors.js';
import { renderPage, renderContent } from './page.js';
import type { StatusDoc } from './status-doc.js';
import type { Logger } from './log.js';

export interface HttpSources {
  metrics(): Promise<{ text: string; contentType: string }>;
  status(): StatusDoc;
  log: Logger;
}

async function handle(src: HttpSources, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  try {
    if (path === '/metrics') {
      const m = await src.metrics();
      res.writeHead(200, { 'Content-Type': m.contentType }).end(m.text);
    } else if (path === '/api/status') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(src.status()));
    } else if (path === '/api/status.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(renderContent(src.status()));
    } else if (path === '/' || path === '/index.html') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store',
        'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      }).end(renderPage(src.status()));
    } else if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  } catch (e) {
    src.log.error({ event: 'http-error', path, error: errorText(e) }, `HTTP ${path}: ${errorText(e)}`);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`error: ${errorText(e)}\n`);
  }
}

/** Listens on host:port (port 0: any free one) and logs where. */
export function serveHttp(src: HttpSources, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => void handle(src, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      const where = typeof a === 'object' && a ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : `${host}:${port}`;
      src.log.info({ event: 'listening', address: where }, `metrics at http://${where}/metrics, status page at http://${where}/`);
      resolve(server);
    });
  });
}
