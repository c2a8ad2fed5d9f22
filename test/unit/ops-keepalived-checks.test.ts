/**
 * Health checks in keepalived's vocabulary, against real HTTP servers on loopback (no root):
 * status ranges, several URLs, the body digest, delay-before-retry (counted in attempts), the
 * warm-up, notify commands with their arguments, and quorum with hysteresis. Checks are read from
 * a configuration file's text, as `lvs-xdp run` reads them, and run by the same check loop,
 * health model and notify helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { healthPlan, type HealthPlan, type Target } from '../../src/ops/spec.js';
import { runProbe, statusAccepted } from '../../src/ops/probes.js';
import { HealthModel } from '../../src/ops/health.js';
import { CheckLoop, firstDelayMs, nextDelayMs } from '../../src/ops/checker.js';
import { runNotify, realserverNotification, quorumNotification, serviceNotification, notifyArgv, type Notification } from '../../src/ops/notify.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler, host = '127.0.0.1', port = 0): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

const close = (s: Server): Promise<void> => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); });

/** The health plan of one service on `port` with this health-check block (YAML flow mapping). */
function plan(check: string, port: number, realservers = '[{ address: 127.0.0.1 }]'): HealthPlan & { cfg: ReturnType<typeof parseConfigText> } {
  const cfg = parseConfigText(`services:\n  - vip: 10.0.0.1\n    port: ${port}\n    health-check: ${check}\n    realservers: ${realservers}\n`, 'checks.yaml');
  return { ...healthPlan(cfg), cfg };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('status codes and ranges: a listed range passes, a status outside fails; default 200-399', async () => {
  assert.equal(statusAccepted(404, [], [[400, 499]]), true);
  assert.equal(statusAccepted(302, [], []), true);
  assert.equal(statusAccepted(302, [200], [[500, 599]]), false);
  const codes: Record<string, number> = { '/a': 404, '/b': 503, '/c': 204 };
  const s = await serve((req, res) => res.writeHead(codes[req.url!] ?? 200).end('x'));
  try {
    const check = (path: string) => plan(`{ type: http, path: ${path}, expect-status: ["500-599", 204], timeout: 2s }`, s.port).targets[0]!;
    const b = await runProbe(check('/b'), { host: '127.0.0.1', port: s.port });
    assert.equal(b.ok, true, b.detail);
    assert.equal((await runProbe(check('/c'), { host: '127.0.0.1', port: s.port })).ok, true);
    const a = await runProbe(check('/a'), { host: '127.0.0.1', port: s.port });
    assert.deepEqual(a, { ok: false, detail: 'http /a: status 404 (expected 204 500-599)' });
  } finally {
    await close(s.server);
  }
  // Errors name the field.
  for (const [bad, re] of [['"200-"', /expected a status \(200\) or a range/], ['"299-200"', /runs backwards/], ['[600]', /599/]] as const) {
    assert.throws(() => plan(`{ type: http, expect-status: ${bad} }`, 80), (e: unknown) => e instanceof ConfigError && /checks\.yaml:4:\d+: services\[0\]\.health-check\.expect-status/.test(e.message) && re.test(e.message));
  }
});

test('several URLs: each is fetched in order, every one must pass', async () => {
  const s = await serve((req, res) => res.writeHead(req.url === '/bad' ? 500 : 200).end('ok'));
  try {
    const good = plan('{ type: http, timeout: 2s, urls: [{ path: /one }, { path: /two, expect-status: 200 }] }', s.port).targets[0]!;
    const r = await runProbe(good, { host: '127.0.0.1', port: s.port });
    assert.deepEqual(r, { ok: true, detail: 'http /one: status 200; http /two: status 200' });
    assert.deepEqual(s.hits, ['/one', '/two']);
    const bad = plan('{ type: http, timeout: 2s, urls: [{ path: /one }, { path: /bad }, { path: /three }] }', s.port).targets[0]!;
    const b = await runProbe(bad, { host: '127.0.0.1', port: s.port });
    assert.deepEqual(b, { ok: false, detail: 'url 2 of 3: http /bad: status 500 (expected 200-399)' });
    assert.deepEqual(s.hits, ['/one', '/two', '/one', '/bad'], 'stops at the first URL that fails');
  } finally {
    await close(s.server);
  }
  assert.throws(() => plan('{ type: http, path: /x, urls: [{ path: /y }] }', 80), /path beside urls: put it in the url it applies to/);
  assert.throws(() => plan('{ type: tcp, urls: [{ path: /y }] }', 80), /urls applies to type http \/ https, not tcp/);
});

test('body digest: the MD5 of the whole body (keepalived genhash), a mismatch fails naming both', async () => {
  const big = 'x'.repeat(200_000) + 'end'; // beyond the 64 KiB kept for expect-body: the digest still covers all of it
  const s = await serve((req, res) => res.writeHead(200).end(req.url === '/big' ? big : 'hello'));
  try {
    const ok = plan('{ type: http, path: /, digest: 5D41402ABC4B2A76B9719D911017C592, timeout: 2s }', s.port).targets[0]!;
    assert.equal(ok.spec.digest, '5d41402abc4b2a76b9719d911017c592');
    assert.deepEqual(await runProbe(ok, { host: '127.0.0.1', port: s.port }), { ok: true, detail: 'http /: status 200, digest matches' });
    const wrong = plan('{ type: http, path: /, digest: "00000000000000000000000000000000", timeout: 2s }', s.port).targets[0]!;
    assert.deepEqual(await runProbe(wrong, { host: '127.0.0.1', port: s.port }),
      { ok: false, detail: 'http /: body digest 5d41402abc4b2a76b9719d911017c592, expected 00000000000000000000000000000000' });
    const { createHash } = await import('node:crypto');
    const md5 = createHash('md5').update(big).digest('hex');
    const whole = plan(`{ type: http, path: /big, digest: ${md5}, timeout: 2s }`, s.port).targets[0]!;
    assert.equal((await runProbe(whole, { host: '127.0.0.1', port: s.port })).ok, true);
  } finally {
    await close(s.server);
  }
  assert.throws(() => plan('{ type: http, digest: abc }', 80), /expected an MD5 digest: 32 hex digits/);
});

/** A check loop feeding a health model, as `run` wires them (notify helpers included). */
function loop(p: HealthPlan & { cfg: ReturnType<typeof parseConfigText> }, notes: Notification[] = [], random = Math.random) {
  const model = new HealthModel(p.cfg, p, Date.now());
  const loops = p.targets.map((t) => new CheckLoop(t, (x) => runProbe(x, { host: x.address, port: x.spec.port }), (x, r) => {
    const tr = model.report(x.key, r.ok, r.detail, Date.now());
    if (tr) {
      const n = realserverNotification(model, x, tr);
      if (n) notes.push(n);
      for (const q of model.takeQuorumChanges()) {
        const qn = quorumNotification(model, q);
        if (qn) notes.push(qn);
      }
    }
    const h = model.stateByKey(x.key)!;
    return { state: h.state, failRun: h.failRun };
  }, random).start());
  return { model, loops, stop: () => loops.forEach((l) => l.stop()) };
}

test('delay-before-retry: a failing up realserver is retried soon, fall attempts in all, then back to the interval', async () => {
  assert.equal(nextDelayMs({ intervalMs: 10_000, delayBeforeRetryMs: 50 }, false, { state: 'up', failRun: 1 }, 5), 50);
  assert.equal(nextDelayMs({ intervalMs: 10_000, delayBeforeRetryMs: 50 }, false, { state: 'down', failRun: 3 }, 5), 9995);
  assert.equal(nextDelayMs({ intervalMs: 10_000, delayBeforeRetryMs: 50 }, true, { state: 'up', failRun: 0 }, 5), 9995);
  const s = await serve((_req, res) => res.writeHead(500).end());
  try {
    // interval 10 s: without the retries only the first check would come in the whole test.
    const l = loop(plan('{ type: http, interval: 10s, timeout: 1s, fall: 3, rise: 1, warmup: 0, delay-before-retry: 50ms }', s.port));
    try {
      await until(() => l.model.all[0]!.state === 'down', 'the realserver to go down after its retries');
      assert.equal(s.hits.length, 3, 'the first check and two retries');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(s.hits.length, 3, 'down: the next check waits for the interval');
    } finally {
      l.stop();
    }
    // The same without delay-before-retry: one attempt, still up.
    s.hits.length = 0;
    const m = loop(plan('{ type: http, interval: 10s, timeout: 1s, fall: 3, rise: 1, warmup: 0 }', s.port));
    try {
      await until(() => s.hits.length === 1, 'the first check');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(s.hits.length, 1);
      assert.equal(m.model.all[0]!.state, 'up');
    } finally {
      m.stop();
    }
  } finally {
    await close(s.server);
  }
});

test('warm-up: the first check waits a random delay of up to warmup (0: at once)', async () => {
  assert.equal(firstDelayMs({ warmupMs: 0, intervalMs: 5000 }, () => 0.99), 0);
  assert.equal(firstDelayMs({ warmupMs: 3000, intervalMs: 5000 }, () => 0.5), 1500);
  assert.equal(firstDelayMs({ intervalMs: 5000 }, () => 0.5), 500, 'default: spread over min(interval, 1 s)');
  const s = await serve((_req, res) => res.writeHead(200).end());
  try {
    const late = loop(plan('{ type: http, interval: 30s, warmup: 1m }', s.port), [], () => 0.5); // first check after 30 s
    const now = loop(plan('{ type: http, interval: 30s, warmup: 0 }', s.port), [], () => 0.5);
    try {
      await until(() => s.hits.length >= 1, 'the warmup: 0 check');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(s.hits.length, 1, 'the warm-up holds the other check back');
      assert.equal(late.model.all[0]!.checks, 0);
      assert.equal(now.model.all[0]!.checks, 1);
    } finally {
      late.stop();
      now.stop();
    }
  } finally {
    await close(s.server);
  }
});

test('notify commands run with their placeholders and environment on realserver down and up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-notify-'));
  let healthy = true;
  const s = await serve((_req, res) => res.writeHead(healthy ? 200 : 503).end());
  try {
    const out = join(dir, 'calls');
    const script = join(dir, 'notify.sh');
    writeFileSync(script, `printf '%s|' "$@" "$LVS_EVENT" "$LVS_REALSERVER" "$LVS_UP_WEIGHT" >> ${out}; echo >> ${out}\n`);
    const argv = `[/bin/sh, ${script}, "{event}", "{service}", "{address}:{port}", "{weight}/{quorum}", "{detail}"]`;
    const notes: Notification[] = [];
    const p = plan(`{ type: http, interval: 200ms, timeout: 200ms, rise: 1, fall: 1, warmup: 0, notify: { realserver-down: ${argv}, realserver-up: ${argv} } }`, s.port,
      '[{ address: 127.0.0.1, weight: 3 }]');
    const l = loop(p, notes);
    try {
      await until(() => l.model.all[0]!.checks >= 1, 'a first check');
      healthy = false;
      await until(() => notes.length === 1, 'the down notification');
      healthy = true;
      await until(() => notes.length === 2, 'the up notification');
    } finally {
      l.stop();
    }
    for (const n of notes) assert.equal((await runNotify(n.argv, n.context)).ok, true);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.deepEqual(lines, [
      `realserver-down|tcp 10.0.0.1:${s.port}|127.0.0.1:${s.port}|0/1|http /: status 503 (expected 200-399)|realserver-down|127.0.0.1|0|`,
      `realserver-up|tcp 10.0.0.1:${s.port}|127.0.0.1:${s.port}|3/1|http /: status 200|realserver-up|127.0.0.1|3|`,
    ]);
    // A command that fails or does not exist is reported, never thrown.
    const bad = await runNotify(['/nonexistent/notify'], notes[0]!.context);
    assert.deepEqual(bad, { ok: false, detail: '/nonexistent/notify: ENOENT' });
    assert.deepEqual((await runNotify(['/bin/sh', '-c', 'echo nope; exit 3'], notes[0]!.context)), { ok: false, detail: '/bin/sh: exit 3: nope' });
    const slow = await runNotify(['/bin/sleep', '5'], notes[0]!.context, 100);
    assert.deepEqual(slow, { ok: false, detail: '/bin/sleep: killed after 100 ms' });
  } finally {
    await close(s.server);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(notifyArgv(['{x}', 'a{vip}b'], { event: 'service-up', service: 's', protocol: 'tcp', vip: '10.0.0.1', vport: 80, upWeight: 1, quorum: 1 }), ['{x}', 'a10.0.0.1b']);
  assert.throws(() => plan('{ type: tcp }', 80, '[{ address: 10.0.0.2, health-check: { notify: { quorum-up: [/bin/true] } } }]'), /unknown field "quorum-up"/);
});

test('quorum with hysteresis: lost below quorum - hysteresis, gained at quorum + hysteresis; the sorry server while lost; notifications', async () => {
  // Four realservers of weight 1 on 127.0.0.11-14, each an HTTP server we turn up or down.
  const health = new Map<string, boolean>();
  const servers: Server[] = [];
  const first = await serve((req, res) => res.writeHead(health.get(req.socket.localAddress!) === false ? 503 : 200).end(), '127.0.0.11');
  servers.push(first.server);
  for (const a of ['127.0.0.12', '127.0.0.13', '127.0.0.14']) {
    servers.push((await serve((req, res) => res.writeHead(health.get(req.socket.localAddress!) === false ? 503 : 200).end(), a, first.port)).server);
  }
  const notes: Notification[] = [];
  try {
    const rs = '[{ address: 127.0.0.11 }, { address: 127.0.0.12 }, { address: 127.0.0.13 }, { address: 127.0.0.14 }]';
    const p = plan(`{ type: http, interval: 200ms, timeout: 200ms, rise: 1, fall: 1, warmup: 0, quorum: 3, hysteresis: 1,
      sorry-server: { address: 10.9.9.9 }, notify: { quorum-up: [/bin/q, up, "{weight}"], quorum-down: [/bin/q, down, "{weight}"], service-down: [/bin/s] } }`, first.port, rs);
    const l = loop(p, notes);
    const id = `tcp 10.0.0.1:${first.port}`;
    const upCount = () => l.model.all.filter((h) => h.state === 'up').length;
    const set = async (down: string[]) => {
      for (const a of ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']) health.set(a, !down.includes(a));
      await until(() => upCount() === 4 - down.length && l.model.all.every((h) => h.checks > 0), `${4 - down.length} realservers up`);
    };
    const state = () => {
      const sh = l.model.effective().services.get(id)!;
      return { quorum: sh.quorum!.up, weight: sh.quorum!.upWeight, sorry: sh.sorryActive };
    };
    try {
      await set([]);
      assert.deepEqual(state(), { quorum: true, weight: 4, sorry: false });
      await set(['127.0.0.11', '127.0.0.12']);
      assert.deepEqual(state(), { quorum: true, weight: 2, sorry: false }, '2 is not below 3 - 1: kept');
      await set(['127.0.0.11', '127.0.0.12', '127.0.0.13']);
      assert.deepEqual(state(), { quorum: false, weight: 1, sorry: true }, '1 < 3 - 1: lost');
      // While lost, every realserver is out and the sorry server takes the new flows.
      assert.deepEqual(l.model.effective().config.services[0]!.realservers.map((r) => [r.address, r.weight]),
        [['127.0.0.11', 0], ['127.0.0.12', 0], ['127.0.0.13', 0], ['127.0.0.14', 0], ['10.9.9.9', 1]]);
      await set(['127.0.0.11', '127.0.0.12']);
      assert.deepEqual(state(), { quorum: false, weight: 2, sorry: true }, 'back to 2: not yet 3 + 1');
      await set(['127.0.0.11']);
      assert.deepEqual(state(), { quorum: false, weight: 3, sorry: true }, '3: the nominal quorum, still not 3 + 1: no flap');
      await set([]);
      assert.deepEqual(state(), { quorum: true, weight: 4, sorry: false }, '4 = 3 + 1: gained');
    } finally {
      l.stop();
    }
    assert.deepEqual(notes.map((n) => [n.context.event, ...n.argv.slice(1)].join(' ')).map((x, i) => `${i}:${x}`),
      ['0:quorum-down down {weight}', '1:quorum-up up {weight}']);
    assert.deepEqual(notes.map((n) => notifyArgv(n.argv, n.context)), [['/bin/q', 'down', '1'], ['/bin/q', 'up', '4']]);
    // service-down is every weighted realserver down (not a lost quorum).
    assert.equal(serviceNotification(l.model, id, true)!.context.event, 'service-down');
    assert.equal(serviceNotification(l.model, id, false), undefined, 'no service-up command configured');
  } finally {
    for (const s of servers) await close(s);
  }
  assert.throws(() => plan('{ type: tcp, hysteresis: 1 }', 80), /hysteresis applies to a quorum: set quorum too/);
  assert.throws(() => plan('{ type: tcp, quorum: 0 }', 80), /quorum/);
  assert.ok(!existsSync('/bin/q'));
});
