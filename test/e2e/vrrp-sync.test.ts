// Active/standby with connection sync (README "Connection sync"): the VRRP lab of vrrp.test.ts
// (src/lab/vrrp.ts) with settings.sync on both directors: each runs a master and a backup sync
// daemon (IPVS's protocol, multicast 224.0.0.81:8848 on eth0, syncid 51; the master sends every
// 0.1 s and established entries again every second). vrrp.test.ts is the control without sync
// (rr and wrr connections moved to the other director are reset there); here every scheduler's
// connections survive: rr, wrr, a persistent rr service (its template synced: the client's NEW
// connections go to the same realserver), mh, sh, IPv6. Events: the master dies (SIGKILL of
// keepalived and run, detach), the old master returns (preempt), a planned switchover (sync
// flush, then keepalived stopped) and back; and sync under load (hundreds of connections opened
// at a steady rate, the backup's table following, the lag measured), then a failover under them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { VrrpLab, streamReport, type HaStream, type VrrpDirector } from '../../src/lab/vrrp.js';
import { installCleanupHandlers, testPrefix, runIn, spawnIn, waitFor, installRoot } from '../../src/lab/index.js';
import { NEEDS_ROOT } from './helpers.js';

let lab: VrrpLab;
const times: Record<string, number> = {};

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await VrrpLab.create({ prefix: testPrefix('vsync'), advertInt: 0.2, sync: { interval: 0.1, refresh: 1 }, ...(process.env.LVS_TEST_VERBOSE ? { log: console.log } : {}) });
}, { timeout: 120_000 });

after(() => {
  lab?.stopAll();
  lab?.destroy();
  console.log(`vrrp-sync: ${JSON.stringify(times)}`);
});

const d = (i: number): VrrpDirector => lab.directors[i - 1]!;

interface Status { connections: { entries: number }; sync?: { role: string; sent?: { conns: number; templates: number }; received?: { inserted: number; skipped: Record<string, number> } }[] }

async function status(x: VrrpDirector): Promise<Status> {
  const r = await runIn(x.ns, 'curl', ['-sS', '--max-time', '2', `http://${x.listen}/api/status`]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Status;
}

/** 8 streams per service (one per client address); resolves once every stream flows. */
async function openStreams(): Promise<HaStream[]> {
  const all = lab.services.flatMap((s) => (s.vip.includes(':') ? lab.client.v6s : lab.client.v4s).map((src) => lab.stream(s.vip, src, 90, 50)));
  await waitFor('every stream flowing', () => all.every((x) => x.lines.length >= 4), 20_000, 50);
  return all;
}

/** Every stream flowing again after the event at `since`: none broken, none moved, none stalled. */
async function judge(what: string, streams: HaStream[], since: number): Promise<void> {
  const counts = streams.map((x) => x.lines.length);
  await waitFor(`${what}: every stream flowing again or ended`, () => streams.every((x, i) => x.code !== undefined || x.lines.length >= counts[i]! + 10), 20_000, 100);
  const r = streamReport(streams, since, Date.now());
  console.log(`${what}: ${JSON.stringify(r)}`);
  times[`${what}.maxGapMs`] = r.maxGapMs;
  assert.deepEqual(r.broken, [], `${what}: connections broken`);
  assert.equal(r.changed, 0, `${what}: a connection answered by another realserver`);
  assert.equal(r.stalled, 0, `${what}: connections stalled`);
}

/** The persistent service's clients: which realserver each source address gets for a new connection. */
async function persistentNames(): Promise<string[]> {
  const s = lab.services.find((x) => x.persistent)!;
  return lab.names(s.vip, lab.client.v4s);
}

test('vrrp-sync: both directors run a master and a backup daemon (-L --daemon as ipvsadm prints it); d1 is master', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  await Promise.all(lab.directors.map((x) => lab.startDirector(x)));
  await lab.masterIs(d(1));
  for (const x of lab.directors) {
    await waitFor(`${x.role}: both daemons listed`, async () => (await lab.lvsOk(x.ns, ['-L', '--daemon'])).split('\n').filter(Boolean).length === 2, 10_000, 100);
    assert.equal(await lab.lvsOk(x.ns, ['-L', '--daemon']), [
      'master sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)',
      'backup sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)', '',
    ].join('\n'));
  }
  const m = await runIn(d(1).ns, 'curl', ['-sS', `http://${d(1).listen}/metrics`]);
  assert.match(m.stdout, /^lvs_xdp_sync_daemon_info\{role="master",interface="eth0",syncid="51",group="224.0.0.81",port="8848",source="file"\} 1$/m);
});

test('vrrp-sync: the master dies (SIGKILL of keepalived and run, detach): 0 connections broken on every scheduler, persistent clients keep their realserver', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await lab.masterIs(d(1));
  const persistent = await persistentNames();
  const streams = await openStreams();
  try {
    // Entries synced: the backup inserted the master's connections (and the persistence templates).
    await waitFor('d2 inserted the synced entries', async () => ((await status(d(2))).sync?.find((x) => x.role === 'backup')?.received?.inserted ?? 0) >= streams.length, 10_000, 100);
    // The same in the metrics: what d1's master sent, what d2's backup inserted.
    const metric = async (x: VrrpDirector, name: string): Promise<number> => {
      const r = await runIn(x.ns, 'curl', ['-sS', `http://${x.listen}/metrics`]);
      return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout)?.[1] ?? NaN);
    };
    assert.ok(await metric(d(1), 'lvs_xdp_sync_messages_sent_total') > 0, 'd1: sync messages sent');
    assert.ok(await metric(d(1), 'lvs_xdp_sync_master_delay_seconds') >= 0.1, 'd1: the master delay is at least its interval');
    assert.ok(await metric(d(2), 'lvs_xdp_sync_messages_received_total') > 0, 'd2: sync messages received');
    assert.ok(await metric(d(2), 'lvs_xdp_sync_entries_inserted_total') >= streams.length, 'd2: entries inserted');
    const t0 = Date.now();
    await Promise.all([lab.masterIs(d(2)), lab.killDirector(d(1))]);
    times.deathVipsMovedMs = Date.now() - t0;
    await judge('master-dies', streams, t0);
    assert.deepEqual(await persistentNames(), persistent, 'persistent clients: new connections go to the same realserver (templates synced)');
    const b = (await status(d(2))).sync?.find((x) => x.role === 'backup')?.received;
    console.log(`d2 backup: ${JSON.stringify(b)}`);
  } finally {
    for (const x of streams) x.kill();
  }
});

test('vrrp-sync: the old master returns (preempt) after learning the live connections from d2: 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await lab.masterIs(d(2));
  const persistent = await persistentNames();
  const streams = await openStreams();
  try {
    const t0 = Date.now();
    // attach, run (its backup daemon hears d2's refreshes within a second), keepalived: it
    // preempts after preempt_delay (3 s), by when d1 holds every live connection.
    await lab.startDirector(d(1));
    await lab.masterIs(d(1));
    times.returnMs = Date.now() - t0;
    await judge('master-returns', streams, t0);
    assert.deepEqual(await persistentNames(), persistent, 'persistent clients keep their realserver on the returning master');
  } finally {
    for (const x of streams) x.kill();
  }
});

test('vrrp-sync: planned switchover (lvs-xdp sync flush, then keepalived stopped) and back: 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await lab.masterIs(d(1));
  let streams = await openStreams();
  try {
    const t0 = Date.now();
    const out = await lab.lvsOk(d(1).ns, ['sync', 'flush']);
    assert.match(out, /^sent \d+ connection entries( and \d+ templates)? in \d+ messages? to 224\.0\.0\.81:8848/m);
    await Promise.all([lab.masterIs(d(2)), lab.stopKeepalived(d(1))]);
    await judge('switchover', streams, t0);
  } finally {
    for (const x of streams) x.kill();
  }
  streams = await openStreams();
  try {
    const t1 = Date.now();
    await lab.lvsOk(d(2).ns, ['sync', 'flush']);
    lab.startKeepalived(d(1));
    await lab.masterIs(d(1));
    await judge('switchback', streams, t1);
  } finally {
    for (const x of streams) x.kill();
  }
});

test('vrrp-sync: sync under load: 600 connections opened at 150/s, the backup follows (lag measured), then the master dies: 0 broken', { skip: NEEDS_ROOT, timeout: 240_000 }, async () => {
  await lab.masterIs(d(1));
  const rr = lab.services.find((s) => s.name === 'rr4')!;
  // Entries of the earlier tests' connections (closing, or live until they expire) on either side.
  const [masterBase, base] = [(await status(d(1))).connections.entries, (await status(d(2))).connections.entries];
  const child = spawnIn(lab.client.ns, 'python3', [join(installRoot(), 'test', 'e2e', 'hold-conns.py'), rr.vip, '80', '600', '150', '120', ...lab.client.v4s],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const out: Record<string, unknown>[] = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { for (const l of s.split('\n').filter(Boolean)) out.push(JSON.parse(l) as Record<string, unknown>); });
  try {
    // The backup's table, sampled while the connections open: its lag behind the master's.
    let lagMs = 0;
    const samples: { t: number; master: number; backup: number }[] = [];
    const t0 = Date.now();
    await waitFor('every connection open', async () => {
      const [m, b] = await Promise.all([status(d(1)), status(d(2))]);
      samples.push({ t: Date.now() - t0, master: m.connections.entries - masterBase, backup: b.connections.entries - base });
      return out.some((o) => o.event === 'opened');
    }, 60_000, 100);
    const opened = out.find((o) => o.event === 'opened')!;
    assert.equal(opened.failed, 0, JSON.stringify(opened));
    const tOpened = Date.now();
    await waitFor('the backup holds every connection', async () => (await status(d(2))).connections.entries - base >= 600, 20_000, 50);
    lagMs = Date.now() - tOpened;
    times.loadOpenMs = opened.ms as number;
    times.loadBackupCaughtUpAfterMs = lagMs;
    // The largest number of connections the backup was behind the master while they opened.
    times.loadMaxBehind = Math.max(...samples.map((s) => s.master - s.backup));
    console.log(`sync under load: opened 600 in ${String(opened.ms)} ms; backup caught up ${lagMs} ms after; max behind ${times.loadMaxBehind}; samples ${JSON.stringify(samples.filter((_, i) => i % 5 === 0))}`);
    const lost = await lab.lvsOk(d(1).ns, ['-L', '-n', '--stats']);
    assert.ok(lost.length > 0);
    const t1 = Date.now();
    await Promise.all([lab.masterIs(d(2)), lab.killDirector(d(1))]);
    times.loadFailoverMs = Date.now() - t1;
    // Long enough for every connection's retransmission to reach d2 after the VIP moved.
    await new Promise((r) => setTimeout(r, 6000));
    child.stdin!.end();
    await waitFor('the verdict', () => out.some((o) => o.event === 'done'), 20_000, 100);
    const done = out.find((o) => o.event === 'done')!;
    console.log(`sync under load, after the failover: ${JSON.stringify(done)}`);
    assert.deepEqual({ broken: done.broken, changed: done.changed, stalled: done.stalled }, { broken: 0, changed: 0, stalled: 0 }, JSON.stringify(done));
  } finally {
    child.kill('SIGKILL');
  }
  // Back to the starting point for nothing else: the lab ends here.
});
