/**
 * Sync messages between namespaces as IPVS's sync daemons exchange them (src/sync/transport.ts):
 * a master in one namespace, two backups in two others, all on one bridge (the "sync
 * interface" of each is its veth). Multicast to 224.0.0.81:8848 and to ff02::8848 reaches both
 * backups; a backup with syncid 7 keeps only syncid 7, one with syncid 0 keeps all; a malformed
 * datagram is dropped with the byte named; unicast to a peer (the lvs-xdp extension) reaches
 * that peer only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { withNetns, uniqueName, type Netns } from '../lib/netns.js';
import { repoRoot } from '../lib/paths.js';
import type { SyncConn } from '../../src/sync/proto.js';

const CHILD = `${repoRoot()}/dist/test/lib/sync-child.js`;

const CONNS: SyncConn[] = [
  { family: 4, protocol: 6, flags: 0x0003, state: 1, cport: 51234, vport: 80, dport: 80, fwmark: 0, timeout: 900, caddr: '203.0.113.7', vaddr: '10.0.0.1', daddr: '192.168.1.10' },
  { family: 4, protocol: 6, flags: 0x1103, state: 0, cport: 0, vport: 80, dport: 80, fwmark: 0, timeout: 360, caddr: '203.0.113.0', vaddr: '10.0.0.1', daddr: '192.168.1.10' },
];
const CONNS6: SyncConn[] = [
  { family: 6, protocol: 17, flags: 0x0103, state: 0, cport: 40000, vport: 53, dport: 53, fwmark: 0, timeout: 300, caddr: '2001:db8:1::7', vaddr: '2001:db8::1', daddr: '2001:db8:1::10' },
];

interface Line { syncid?: number; version?: number; conns?: SyncConn[]; from?: string; drop?: string }

/** A receiver in a namespace and the lines it printed so far. */
class Backup {
  readonly lines: Line[] = [];
  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (l.startsWith('{')) this.lines.push(JSON.parse(l) as Line);
      }
    });
  }
  static async start(ns: Netns, opts: object): Promise<Backup> {
    return new Backup(await ns.spawn('node', [CHILD, 'recv', JSON.stringify(opts)], /ready/));
  }
  async waitFor(n: number, ms = 5000): Promise<Line[]> {
    const until = Date.now() + ms;
    while (this.lines.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return this.lines;
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** Three namespaces on a bridge (in the first one): m (master), b7 and b0 (backups). */
async function lab(fn: (m: Netns, b7: Netns, b0: Netns) => Promise<void>): Promise<void> {
  await withNetns(['syM', 'syB', 'syC'], async ([m, b7, b0]) => {
    m!.ip('link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    m!.ip('link', 'set', 'br0', 'up');
    const nets: [Netns, string][] = [[m!, '1'], [b7!, '2'], [b0!, '3']];
    for (const [ns, host] of nets) {
      const peer = uniqueName('syv');
      m!.ip('link', 'add', peer, 'type', 'veth', 'peer', 'name', 'sync0', 'netns', ns.path);
      m!.ip('link', 'set', peer, 'master', 'br0', 'up');
      ns.ip('addr', 'add', `10.99.0.${host}/24`, 'dev', 'sync0');
      ns.ip('addr', 'add', `2001:db8:99::${host}/64`, 'dev', 'sync0', 'nodad');
      ns.ip('link', 'set', 'sync0', 'up');
    }
    await fn(m!, b7!, b0!);
  });
}

function send(m: Netns, opts: object): { sent: number } {
  return JSON.parse(m.exec('node', [CHILD, 'send', JSON.stringify({ interface: 'sync0', ...opts })]).trim()) as { sent: number };
}

test('IPv4 multicast (224.0.0.81:8848): every backup hears it; syncid 7 keeps only syncid 7, syncid 0 keeps all; a malformed datagram is dropped', async () => {
  await lab(async (m, b7, b0) => {
    const seven = await Backup.start(b7, { interface: 'sync0', syncid: 7 });
    const all = await Backup.start(b0, { interface: 'sync0', syncid: 0 });
    try {
      // a 44-byte datagram whose size field says 45 (syncid 7: it passes the filter)
      const bad = '0007002d01010000' + '00'.repeat(36);
      const r = send(m, { batches: [[CONNS, 8], [CONNS, 7]], raw: [bad] });
      assert.equal(r.sent, 2);
      const l7 = await seven.waitFor(2);
      const l0 = await all.waitFor(3);
      assert.deepEqual(l7.filter((l) => l.conns).map((l) => [l.syncid, l.version, l.from]), [[7, 1, '10.99.0.1']]);
      assert.deepEqual(l7.find((l) => l.conns)!.conns, CONNS);
      assert.deepEqual(l0.filter((l) => l.conns).map((l) => l.syncid), [8, 7]);
      for (const lines of [l7, l0]) {
        const drops = lines.filter((l) => l.drop);
        assert.equal(drops.length, 1, JSON.stringify(lines));
        assert.match(drops[0]!.drop!, /byte 2: size field says 45 bytes, the datagram has 44/);
      }
    } finally {
      seven.stop();
      all.stop();
    }
  });
});

test('IPv6 multicast (ff02::8848) with a chosen port', async () => {
  await lab(async (m, b7, b0) => {
    const opts = { interface: 'sync0', group: 'ff02::8848', port: 8850 };
    const seven = await Backup.start(b7, { ...opts, syncid: 7 });
    const all = await Backup.start(b0, { ...opts, syncid: 0 });
    try {
      assert.equal(send(m, { ...opts, batches: [[CONNS6, 7]] }).sent, 1);
      for (const b of [seven, all]) {
        const lines = await b.waitFor(1);
        assert.equal(lines.length, 1);
        assert.deepEqual(lines[0]!.conns, CONNS6);
        assert.match(lines[0]!.from!, /^(2001:db8:99::1|fe80::)/, 'sent from the master\'s sync interface');
      }
    } finally {
      seven.stop();
      all.stop();
    }
  });
});

test('unicast to a peer (lvs-xdp extension): only that peer receives', async () => {
  await lab(async (m, b7, b0) => {
    const seven = await Backup.start(b7, { interface: 'sync0', syncid: 7, multicast: false });
    const all = await Backup.start(b0, { interface: 'sync0', syncid: 0 });
    try {
      assert.equal(send(m, { multicast: false, peers: ['10.99.0.2'], batches: [[CONNS, 7]] }).sent, 1);
      const lines = await seven.waitFor(1);
      assert.deepEqual(lines.map((l) => [l.syncid, l.from]), [[7, '10.99.0.1']]);
      assert.deepEqual(lines[0]!.conns, CONNS);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(all.lines, [], 'the other backup got nothing (no multicast was sent)');
    } finally {
      seven.stop();
      all.stop();
    }
  });
});
