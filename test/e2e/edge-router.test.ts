// examples/edge-router end to end: client ns -> uplink -> router ns (the example daemon, lvs-xdp
// attached on its uplink eth0) -> eth1 -> realserver ns. Real TCP through the VIP leaves by
// XDP_REDIRECT out of eth1 (LVS-DR: the VIP on the realserver's lo, answers routed back through
// the router's kernel); a ping and a TCP connection to the realserver's own address are routed
// by the kernel, not by lvs-xdp; eth1 going down and up is reported and its next hops resolved
// again; eth0 going down and up changes nothing; eth0 deleted and created again (a new ifindex,
// the XDP link gone with the old device) is attached again; the counters are read from the
// daemon's GET /counters; SIGTERM detaches and removes every pin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEEDS_ROOT } from './helpers.js';
import { repoRoot } from '../lib/paths.js';
import { withNetns, vethPair, type Netns } from '../lib/netns.js';

const VIP = '203.0.113.80';
const RIP = '198.51.100.10';
const ROUTER_UP = '192.0.2.1';
const CLIENT = '192.0.2.2';

interface Event { event: string; [k: string]: unknown }

/** The daemon, started in `ns`, with its stdout read as one JSON event per line. */
class Daemon {
  readonly events: Event[] = [];
  stderr = '';
  readonly child: ChildProcess;
  constructor(ns: Netns, args: string[]) {
    this.child = spawn('nsenter', [`--net=${ns.path}`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.events.push(JSON.parse(buf.slice(0, i)) as Event);
        buf = buf.slice(i + 1);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** The first event from index `from` on that matches; fails after `ms`. */
  async waitFor(match: (e: Event) => boolean, what: string, from = 0, ms = 15_000): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.events.slice(from).find(match);
      if (e) return e;
      if (this.child.exitCode !== null) assert.fail(`the daemon exited (${this.child.exitCode}) before ${what}: ${this.stderr}`);
      if (Date.now() > deadline) assert.fail(`no ${what} within ${ms} ms; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** One new TCP connection per request through the VIP (or any address): the body, or null. */
function get(client: Netns, addr: string, timeoutS = 3): string | null {
  const r = client.run('curl', ['-s', '-m', String(timeoutS), `http://${addr}/`]);
  return r.status === 0 ? r.stdout.trim() : null;
}

function uplink(client: Netns, router: Netns): void {
  vethPair(client, 'eth0', router, 'eth0');
  client.ip('addr', 'add', `${CLIENT}/24`, 'dev', 'eth0');
  router.ip('addr', 'add', `${ROUTER_UP}/24`, 'dev', 'eth0');
  // The VIP is not the router's address: its upstream routes it to the router, as to any hop.
  client.ip('route', 'add', `${VIP}/32`, 'via', ROUTER_UP);
  client.ip('route', 'add', '198.51.100.0/24', 'via', ROUTER_UP);
}

test('edge-router example: VIP traffic redirected to the realserver link, other traffic routed by the kernel, link flaps handled, counters exported', { skip: NEEDS_ROOT, timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-edge-'));
  let daemon: Daemon | undefined;
  try {
    await withNetns(['erc', 'err', 'ers'], async ([client, router, rs]) => {
      uplink(client!, router!);
      vethPair(router!, 'eth1', rs!, 'eth0');
      router!.ip('addr', 'add', '198.51.100.1/24', 'dev', 'eth1');
      router!.setSysctl('net/ipv4/ip_forward', 1);
      // The answers come from the VIP into eth1, a source the router routes elsewhere: asymmetric by design.
      for (const k of ['all', 'default', 'eth0', 'eth1']) router!.setSysctl(`net/ipv4/conf/${k}/rp_filter`, 0);
      rs!.ip('addr', 'add', `${RIP}/24`, 'dev', 'eth0');
      rs!.ip('addr', 'add', `${VIP}/32`, 'dev', 'lo');
      rs!.ip('route', 'add', 'default', 'via', '198.51.100.1');
      rs!.setSysctl('net/ipv4/conf/all/arp_ignore', 1);
      rs!.setSysctl('net/ipv4/conf/all/arp_announce', 2);
      // A veth delivers XDP_REDIRECTed frames only when its peer has NAPI (an XDP program or GRO
      // on): a veth-only condition, a NIC has no such peer.
      rs!.exec('ethtool', ['-K', 'eth0', 'gro', 'on']);
      await rs!.spawn(process.execPath, ['-e', "require('http').createServer((q, s) => s.end('rs1\\n')).listen(80, () => console.log('listening'))"], /listening/);

      const cfg = join(dir, 'router.json');
      writeFileSync(cfg, JSON.stringify({
        uplink: 'eth0', xdpMode: 'auto', http: '127.0.0.1:0', pollMs: 100,
        services: [{ vip: VIP, port: 80, protocol: 'tcp', scheduler: 'mh', backends: [RIP] }],
      }));
      daemon = new Daemon(router!, [join(repoRoot(), 'dist', 'examples', 'edge-router', 'router.js'), cfg]);
      const ready = await daemon.waitFor((e) => e.event === 'ready', 'ready');
      t.diagnostic(JSON.stringify(ready));
      assert.deepEqual(ready.watching, ['eth0', 'eth1'], 'the daemon watches the uplink and the backend link lvs-xdp resolved');
      const counters = () => JSON.parse(router!.exec('curl', ['-s', '-m', '3', `http://${String(ready.http)}/counters`])) as {
        forwarded: { dr: number; redirected: number }; passedToKernel: { notVip: number }; dropped: Record<string, number>;
        services: { id: string; conns: number }[]; events: { reattaches: number; refreshes: number; linkChanges: number };
        interfaces: { name: string; ifindex: number; linked: boolean }[];
      };

      // VIP: every new connection answered through XDP_REDIRECT out of eth1.
      for (let i = 0; i < 20; i++) assert.equal(get(client!, VIP), 'rs1', `request ${i} through the VIP`);
      const c1 = counters();
      assert.ok(c1.forwarded.dr > 0 && c1.forwarded.redirected === c1.forwarded.dr, JSON.stringify(c1.forwarded));
      assert.ok(c1.services[0]!.conns >= 20, JSON.stringify(c1.services));
      assert.deepEqual(c1.dropped, {});

      // Not a VIP: routed by the kernel through the router, lvs-xdp forwards none of it.
      client!.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', RIP]);
      assert.equal(get(client!, RIP), 'rs1', 'TCP to the realserver\'s own address, routed');
      const c2 = counters();
      assert.equal(c2.forwarded.dr, c1.forwarded.dr, 'non-VIP packets were not forwarded by lvs-xdp');
      assert.ok(c2.passedToKernel.notVip >= c1.passedToKernel.notVip + 4, `${c1.passedToKernel.notVip} -> ${c2.passedToKernel.notVip}`);

      // The realserver link goes down: reported, the VIP unreachable; back up: next hops resolved again.
      let mark = daemon.events.length;
      router!.ip('link', 'set', 'dev', 'eth1', 'down');
      await daemon.waitFor((e) => e.event === 'link' && e.name === 'eth1' && e.state === 'down', 'eth1 down', mark);
      assert.equal(get(client!, VIP, 1), null, 'no answer while the realserver link is down');
      router!.ip('link', 'set', 'dev', 'eth1', 'up');
      const refreshed = await daemon.waitFor((e) => e.event === 'refreshed' && e.name === 'eth1', 'eth1 refreshed', mark);
      assert.deepEqual(refreshed.unresolved, {});
      for (let i = 0; i < 5; i++) assert.equal(get(client!, VIP), 'rs1', `request ${i} after eth1 came back`);

      // The uplink goes down and up: the XDP link stays, nothing to attach again.
      mark = daemon.events.length;
      router!.ip('link', 'set', 'dev', 'eth0', 'down');
      await daemon.waitFor((e) => e.event === 'link' && e.name === 'eth0' && e.state === 'down', 'eth0 down', mark);
      router!.ip('link', 'set', 'dev', 'eth0', 'up');
      await daemon.waitFor((e) => e.event === 'link' && e.name === 'eth0' && e.state === 'up', 'eth0 up', mark);
      assert.equal(get(client!, VIP), 'rs1', 'through the VIP after the uplink flap');
      assert.ok(!daemon.events.slice(mark).some((e) => e.event === 'reattached'), 'a flap needs no attach');

      // The uplink deleted and created again: a new device, attached again with the services kept.
      mark = daemon.events.length;
      router!.ip('link', 'del', 'dev', 'eth0');
      await daemon.waitFor((e) => e.event === 'link' && e.name === 'eth0' && e.state === 'gone', 'eth0 gone', mark);
      uplink(client!, router!);
      const re = await daemon.waitFor((e) => e.event === 'reattached', 'reattached', mark);
      for (let i = 0; i < 5; i++) assert.equal(get(client!, VIP), 'rs1', `request ${i} after the uplink was recreated`);
      const c3 = counters();
      t.diagnostic(JSON.stringify(c3));
      assert.equal(c3.events.reattaches, 1);
      assert.equal(c3.events.refreshes, 1);
      assert.deepEqual(c3.interfaces.map((i) => [i.name, i.ifindex, i.linked]), [['eth0', re.ifindex, true]]);
      assert.ok(c3.services[0]!.conns >= 31, JSON.stringify(c3.services));
      assert.deepEqual(c3.dropped, {});

      // SIGTERM: lvs-xdp detached, every pin removed.
      mark = daemon.events.length;
      daemon.child.kill('SIGTERM');
      const stopped = await daemon.waitFor((e) => e.event === 'stopped', 'stopped', mark);
      assert.equal(stopped.removed, true);
      await new Promise((r) => (daemon!.child.exitCode !== null ? r(undefined) : daemon!.child.once('exit', r)));
      assert.equal(daemon.child.exitCode, 0);
      assert.ok(!existsSync(`/sys/fs/bpf/lvs-xdp@${router!.name}`), 'no pins left');
    }, ([, router]) => {
      if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      for (const p of [`/sys/fs/bpf/lvs-xdp@${router!.name}`, `/run/lvs-xdp/lvs-xdp@${router!.name}`]) rmSync(p, { recursive: true, force: true });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
