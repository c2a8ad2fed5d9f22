/** The probes against servers on loopback (no root): TCP, HTTP status/body, UDP answer, exec argv. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcp, type AddressInfo } from 'node:net';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { repoRoot } from '../lib/paths.js';
import { modulesLoadedBy } from '../lib/loads.js';
import { createSocket } from 'node:dgram';
import { probeTcp, probeHttp, probeUdp, probeExec, expandArgv, runProbe } from '../../src/ops/probes.js';
import type { Target, CheckSpec } from '../../src/ops/spec.js';

const LO = '127.0.0.1';

function spec(over: Partial<CheckSpec>): CheckSpec {
  return {
    type: 'tcp', port: 0, intervalMs: 1000, timeoutMs: 2000, rise: 1, fall: 1, initial: 'up', via: 'direct', onDown: 'finish',
    path: '/', expectStatus: [], tlsVerify: false, payload: '', ...over,
  };
}

function target(over: Partial<CheckSpec>): Target {
  return { key: 'k', service: 'tcp 10.0.0.1:80', vip: '10.0.0.1', vport: 80, protocol: 'tcp', address: LO, method: 'dr', spec: spec(over) };
}

async function freePort(): Promise<number> {
  const s = createTcp();
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('tcp: connect ok, refused fails', async () => {
  const s = createTcp((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  try {
    assert.equal((await probeTcp({ host: LO, port }, 2000)).ok, true);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
  const r = await probeTcp({ host: LO, port: await freePort() }, 2000);
  assert.equal(r.ok, false);
  assert.match(r.detail, /ECONNREFUSED/);
});

test('http: status and body rules, path and Host header sent', async () => {
  const seen: string[] = [];
  const s = createHttp((req, res) => {
    seen.push(`${req.url} ${req.headers.host}`);
    if (req.url === '/down') res.writeHead(503).end('maintenance');
    else if (req.url === '/redirect') res.writeHead(302, { Location: '/' }).end();
    else res.writeHead(200).end('status: ok\n');
  });
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  const http = (path: string, o: { expectStatus?: number[]; expectBody?: string; host?: string } = {}) =>
    probeHttp({ host: LO, port }, { tls: false, path, expectStatus: o.expectStatus ?? [], tlsVerify: false, ...(o.expectBody ? { expectBody: o.expectBody } : {}), ...(o.host ? { host: o.host } : {}) }, 2000);
  try {
    assert.equal((await http('/')).ok, true);
    assert.equal((await http('/redirect')).ok, true, '3xx is fine by default');
    const down = await http('/down');
    assert.equal(down.ok, false);
    assert.match(down.detail, /status 503/);
    assert.equal((await http('/down', { expectStatus: [503] })).ok, true);
    assert.equal((await http('/redirect', { expectStatus: [200] })).ok, false);
    assert.equal((await http('/', { expectBody: '^status: ok' })).ok, true);
    const nb = await http('/', { expectBody: 'nope' });
    assert.equal(nb.ok, false);
    assert.match(nb.detail, /body does not match/);
    await http('/hz', { host: 'www.example.com' });
    assert.ok(seen.includes('/hz www.example.com'), seen.join(', '));
  } finally {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('https: a real TLS server; status and body over TLS, SNI from host, tls-verify refuses a self-signed certificate', async () => {
  const dir = `${repoRoot()}/test/fixtures/tls`;
  const seen: string[] = [];
  const s = createHttps({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    seen.push(`${req.url} sni=${(req.socket as TLSSocket).servername || '-'}`);
    if (req.url === '/down') res.writeHead(503).end('maintenance');
    else res.writeHead(200).end('status: ok\n');
  });
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  const https = (path: string, o: { expectBody?: string; host?: string; tlsVerify?: boolean } = {}) =>
    probeHttp({ host: LO, port }, { tls: true, path, expectStatus: [], tlsVerify: o.tlsVerify ?? false, ...(o.expectBody ? { expectBody: o.expectBody } : {}), ...(o.host ? { host: o.host } : {}) }, 2000);
  try {
    const up = await https('/', { expectBody: '^status: ok' });
    assert.equal(up.ok, true, up.detail);
    assert.match(up.detail, /^https \/: status 200, body matches/);
    const down = await https('/down');
    assert.equal(down.ok, false);
    assert.match(down.detail, /https \/down: status 503/);
    assert.equal((await https('/hz', { host: 'www.example.com' })).ok, true);
    assert.ok(seen.includes('/hz sni=www.example.com'), seen.join(', '));
    const strict = await https('/', { host: 'www.example.com', tlsVerify: true });
    assert.equal(strict.ok, false, 'a self-signed certificate is not trusted with tls-verify');
    assert.match(strict.detail, /self[- ]signed|certificate/i);
    // Through runProbe, as the operator's https check runs it.
    const viaSpec = await runProbe(target({ type: 'https', port, path: '/', expectBody: 'ok' }), { host: LO, port });
    assert.equal(viaSpec.ok, true, viaSpec.detail);
  } finally {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('http: a server that never answers times out', async () => {
  const s = createTcp((c) => { c.resume(); c.on('error', () => undefined); });
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  try {
    const r = await probeHttp({ host: LO, port }, { tls: false, path: '/', expectStatus: [], tlsVerify: false }, 200);
    assert.equal(r.ok, false);
    assert.match(r.detail, /timeout/);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('udp: an answer (containing expect) passes; a wrong answer, silence or a closed port fails', async () => {
  const s = createSocket('udp4');
  s.on('message', (m, ri) => { if (m.toString() !== 'quiet') s.send(`pong to ${m.toString()}`, ri.port, ri.address); });
  await new Promise<void>((r) => s.bind(0, LO, r));
  const port = s.address().port;
  try {
    assert.equal((await probeUdp({ host: LO, port }, 'ping', 'pong', 1000)).ok, true);
    assert.equal((await probeUdp({ host: LO, port }, 'ping', undefined, 1000)).ok, true);
    assert.equal((await probeUdp({ host: LO, port }, 'ping', 'other', 1000)).ok, false);
    const quiet = await probeUdp({ host: LO, port }, 'quiet', undefined, 200);
    assert.equal(quiet.ok, false);
    assert.match(quiet.detail, /no answer/);
  } finally {
    s.close();
  }
  const closed = createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, LO, r));
  const cport = closed.address().port;
  closed.close();
  const r = await probeUdp({ host: LO, port: cport }, 'ping', undefined, 2000);
  assert.equal(r.ok, false);
});

test('exec: argv without a shell, placeholders, environment, exit status, timeout', async () => {
  const t = target({ type: 'exec', port: 8080, command: ['/bin/sh', '-c', 'test "$1" = "127.0.0.1:8080" && test "$LVS_VIP" = 10.0.0.1', 'check', '{address}:{port}'] });
  assert.deepEqual(expandArgv(t.spec.command!, t), ['/bin/sh', '-c', 'test "$1" = "127.0.0.1:8080" && test "$LVS_VIP" = 10.0.0.1', 'check', '127.0.0.1:8080']);
  assert.equal((await probeExec(t, 5000)).ok, true);
  // Metacharacters in an argument stay one argument: nothing is interpreted.
  const lit = await probeExec(target({ type: 'exec', command: ['/bin/echo', '$(id); echo pwned'] }), 5000);
  assert.equal(lit.ok, true);
  assert.match(lit.detail, /\$\(id\); echo pwned/);
  const f = await probeExec(target({ type: 'exec', command: ['/bin/sh', '-c', 'echo broken >&2; exit 3'] }), 5000);
  assert.equal(f.ok, false);
  assert.match(f.detail, /exit 3: broken/);
  const slow = await probeExec(target({ type: 'exec', command: ['/bin/sleep', '10'] }), 200);
  assert.equal(slow.ok, false);
  assert.match(slow.detail, /killed after 200 ms/);
  const missing = await probeExec(target({ type: 'exec', command: ['/nonexistent/check'] }), 2000);
  assert.equal(missing.ok, false);
  assert.match(missing.detail, /ENOENT/);
});

test('runProbe dispatches on the type', async () => {
  const s = createTcp((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, LO, r));
  const port = (s.address() as AddressInfo).port;
  try {
    assert.equal((await runProbe(target({ type: 'tcp', port }), { host: LO, port })).ok, true);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('the probes module holds node:http, node:https and node:dgram only once a probe needs them', async () => {
  const loads = (code: string) => modulesLoadedBy(['--input-type=module', '-e', code]).filter((u) => /^node:\w+$/.test(u));
  const probes = JSON.stringify(new URL('../../src/ops/probes.js', import.meta.url).href);
  const idle = loads(`const p = await import(${probes}); await p.probeTcp({ host: '127.0.0.1', port: 9 }, 500);`);
  for (const m of ['node:http', 'node:https', 'node:dgram']) assert.ok(!idle.includes(m), `${m} loaded by a tcp probe: ${idle.join(' ')}`);
  const used = loads(`const p = await import(${probes}); await p.probeHttp({ host: '127.0.0.1', port: 9 }, { tls: true, path: '/', expectStatus: [], tlsVerify: false }, 500);`);
  assert.ok(used.includes('node:https'), `an https probe loads node:https: ${used.join(' ')}`);
});
