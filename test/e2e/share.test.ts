// Sharing the director's interface with another project's XDP programs (test/peer-xdp, loaded
// with bpftool, not with lvs-xdp's code) by tail calls (attach --multiprog): real TCP through a
// VIP with a firewall in front of lvs-xdp and a counter after it. The firewall runs first (SYNs
// to the port it drops never reach lvs-xdp's counters), the counter sees only what lvs-xdp
// passed (no VIP traffic), a live change, status and capture work as alone, and detach leaves the
// others running on the root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEEDS_ROOT, useLab, serviceRules, url, tally } from './helpers.js';
import { runIn } from '../../src/lab/exec.js';
import { repoRoot } from '../lib/paths.js';
import { readPcapng } from '../../src/capture/pcapng.js';

const PEER = `/sys/fs/bpf/lvs-peer-${process.pid}`;
const FW_PORT = 8080;

function bpftool(...args: string[]): string {
  return execFileSync('bpftool', args, { encoding: 'utf8' });
}
/** lvs_chain's key of a slot, as bpftool takes it (4 bytes, little-endian). */
function slotKey(ifindex: number, pos: number): string[] {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(ifindex * 4 + pos);
  return [...b].map(String);
}
/** bpftool -j gives a value as little-endian hex bytes (or, with BTF, formatted as well). */
function u64Of(value: unknown): bigint {
  if (Array.isArray(value)) return (value as string[]).reduceRight((a, b) => (a << 8n) | BigInt(b), 0n);
  return BigInt(value as number);
}
function u64At(pin: string, key: string[] = ['0', '0', '0', '0']): bigint {
  return u64Of((JSON.parse(bpftool('-j', 'map', 'lookup', 'pinned', pin, 'key', ...key)) as { value: unknown }).value);
}
/** count_dst's count of packets to an IPv4 address (0 when it saw none). */
function seenTo(addr: string): bigint {
  const r = spawnSync('bpftool', ['-j', 'map', 'lookup', 'pinned', `${PEER}/count_maps/count_dst`, 'key', ...addr.split('.')], { encoding: 'utf8' });
  return r.status === 0 ? u64Of((JSON.parse(r.stdout) as { value: unknown }).value) : 0n;
}

let chain = '';
let rules = '';
let ifindex = 0;

const lab = useLab('share', { clients: 1, realservers: 2 }, async (l) => {
  await l.attachDirector({ mode: 'native', extra: ['--multiprog'] });
  const v = l.vips;
  await Promise.all(l.realservers.map((r) => l.setupRealserver(r, 'dr', [v.dr4])));
  await l.startServers({}, l.realservers);
  const reals = l.realservers.map((r) => ({ addr: r.v4, method: 'g' as const, weight: 1 }));
  rules = `${serviceRules('tcp', v.dr4, 80, 'rr', reals)}\n${serviceRules('tcp', v.dr4, FW_PORT, 'rr', reals)}\n`;
  await l.lvsOk(['-R'], l.director.ns, rules);
  chain = `/sys/fs/bpf/lvs-xdp@${l.director.ns}-chain/lvs_chain`;
  ifindex = (JSON.parse(execFileSync('ip', ['-n', l.director.ns, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as { ifindex: number }[])[0]!.ifindex;
  // The other project: its own build, loaded and put in the slots with bpftool.
  execFileSync('make', ['-s', '-C', `${repoRoot()}/test/peer-xdp`]);
  mkdirSync(PEER, { recursive: true });
  bpftool('prog', 'load', `${repoRoot()}/test/peer-xdp/fw.o`, `${PEER}/fw`, 'type', 'xdp', 'map', 'name', 'lvs_chain', 'pinned', chain, 'pinmaps', `${PEER}/fw_maps`);
  bpftool('prog', 'load', `${repoRoot()}/test/peer-xdp/count.o`, `${PEER}/count`, 'type', 'xdp', 'pinmaps', `${PEER}/count_maps`);
  bpftool('map', 'update', 'pinned', `${PEER}/fw_maps/fw_port`, 'key', '0', '0', '0', '0', 'value', String(FW_PORT & 0xff), String(FW_PORT >> 8), '0', '0');
  bpftool('map', 'update', 'pinned', chain, 'key', ...slotKey(ifindex, 0), 'value', 'pinned', `${PEER}/fw`);
  bpftool('map', 'update', 'pinned', chain, 'key', ...slotKey(ifindex, 2), 'value', 'pinned', `${PEER}/count`);
});

after(() => {
  if (chain && existsSync(chain)) for (const pos of [0, 2]) spawnSync('bpftool', ['map', 'delete', 'pinned', chain, 'key', ...slotKey(ifindex, pos)]);
  rmSync(PEER, { recursive: true, force: true });
});

/** Packets of a service by lvs-xdp's own statistics (ipvsadm -L --stats --exact). */
async function servicePackets(svc: string): Promise<number> {
  const out = await lab().lvsOk(['-L', '-n', '--stats', '--exact', '-t', svc]);
  const m = new RegExp(`TCP\\s+${svc.replace(/\./g, '\\.')}\\s+\\d+\\s+(\\d+)`).exec(out);
  assert.ok(m, out);
  return Number(m[1]);
}

test('shared: HTTP through the VIP with the firewall in front; SYNs to the dropped port never reach lvs-xdp; the counter sees only non-VIP traffic', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const v = l.vips.dr4;
  const names = await l.curl(url(v), { count: 12 });
  // rr keeps a cursor per CPU: both realservers answer, in no fixed split.
  assert.ok(!names.includes(''), JSON.stringify(names));
  assert.deepEqual(Object.keys(tally(names)).sort(), ['rs1', 'rs2'], JSON.stringify(names));
  const dropsBefore = u64At(`${PEER}/fw_maps/fw_drops`);
  const blocked = await l.curl(`http://${v}:${FW_PORT}/`, { count: 3, timeoutS: 2 });
  assert.deepEqual(blocked, ['', '', ''], 'the firewall drops the port');
  assert.ok(u64At(`${PEER}/fw_maps/fw_drops`) - dropsBefore >= 3n, 'each SYN (and its retries) dropped by the firewall');
  assert.equal(await servicePackets(`${v}:${FW_PORT}`), 0, 'lvs-xdp never saw the dropped port\'s packets: the firewall ran first');
  assert.ok(await servicePackets(`${v}:80`) > 0);
  await runIn(l.clients[0]!.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', l.director.v4]);
  assert.ok(seenTo(l.director.v4) >= 3n, 'the counter sees what lvs-xdp passed (the director\'s own address)');
  assert.equal(seenTo(v), 0n, 'and none of the VIP\'s packets, which lvs-xdp forwarded');
});

test('shared: status and doctor say how the interface is shared; a live change works as alone', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const st = await l.lvsOk(['status']);
  assert.match(st, /interface\s+eth0 \(ifindex \d+\) native shared by tail calls \(lvs_root\)/);
  assert.doesNotMatch(st, /LINK MISSING/);
  const doc = (await l.lvs(['doctor', 'eth0'])).stdout;
  assert.match(doc, /ok\s+interface eth0 sharing\s+lvs-xdp's root \(id \d+\) runs the chain: before: program \d+, lvs-xdp: program \d+, after: program \d+/);
  assert.match(doc, /freplace/);
  await l.lvsOk(['-d', '-t', `${l.vips.dr4}:80`, '-r', l.realservers[1]!.v4]);
  try {
    const names = await l.curl(url(l.vips.dr4), { count: 6 });
    assert.deepEqual(tally(names), { rs1: 6 });
  } finally {
    await l.lvsOk(['-a', '-t', `${l.vips.dr4}:80`, '-r', l.realservers[1]!.v4, '-g']);
  }
});

test('capture on the shared interface: pcapng that tcpdump -r reads, the decision in each comment, filtered by service and by outcome', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const v = l.vips.dr4;
  const dir = mkdtempSync(join(tmpdir(), 'lvs-capture-'));
  try {
    const file = join(dir, 'vip.pcapng');
    const cap = l.lvs(['capture', '-w', file, '-c', '6', '--service', `${v}:80`, '--duration', '30']);
    await new Promise((r) => setTimeout(r, 1500));
    await l.curl(url(v), { count: 2 });
    await runIn(l.clients[0]!.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', l.director.v4]);
    const done = await cap;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /6 frames captured/);
    const lines = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
    assert.equal(lines.length, 6, lines.join('\n'));
    for (const line of lines) assert.match(line, new RegExp(`> ${v.replace(/\./g, '\\.')}\\.80: `), 'only the service\'s packets');
    const rs = l.realservers.map((r) => r.v4.replace(/\./g, '\\.')).join('|');
    for (const p of readPcapng(readFileSync(file)).packets) {
      assert.match(p.comment ?? '', new RegExp(`^lvs-xdp: service tcp ${v.replace(/\./g, '\\.')}:80 realserver (${rs}) outcome fwd_dr( events [a-z_,]+)? action XDP_TX$`));
    }
    const passFile = join(dir, 'pass.pcapng');
    const cap2 = l.lvs(['capture', '-w', passFile, '-c', '2', '--outcome', 'pass_not_vip', '--duration', '30']);
    await new Promise((r) => setTimeout(r, 1500));
    await l.curl(url(v), { count: 1 });
    await runIn(l.clients[0]!.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', l.director.v4]);
    assert.equal((await cap2).code, 0);
    const icmp = execFileSync('tcpdump', ['-r', passFile, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
    assert.equal(icmp.length, 2);
    for (const line of icmp) assert.match(line, new RegExp(`> ${l.director.v4.replace(/\./g, '\\.')}: ICMP echo request`));
    for (const p of readPcapng(readFileSync(passFile)).packets) assert.equal(p.comment, 'lvs-xdp: service - realserver - outcome pass_not_vip action XDP_PASS');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a foreign program that is not our root is refused without --force; detach takes only lvs-xdp\'s slot and the others keep running', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const v = l.vips.dr4;
  const root = JSON.parse(execFileSync('ip', ['-n', l.director.ns, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' }))[0].xdp.prog.id as number;
  const out = await l.lvsOk(['detach', 'eth0']);
  assert.match(out, /detached from eth0/);
  const after1 = JSON.parse(execFileSync('ip', ['-n', l.director.ns, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' }))[0];
  assert.equal(after1.xdp?.prog?.id, root, 'the root stays for the firewall and the counter');
  const drops = u64At(`${PEER}/fw_maps/fw_drops`);
  assert.deepEqual(await l.curl(`http://${v}:${FW_PORT}/`, { count: 2, timeoutS: 2 }), ['', '']);
  assert.ok(u64At(`${PEER}/fw_maps/fw_drops`) > drops, 'the firewall still drops');
  const seen = seenTo(v);
  await l.curl(url(v), { count: 2, timeoutS: 2 });
  assert.ok(seenTo(v) > seen, 'without lvs-xdp the counter gets the VIP\'s packets');
  // Our root is the default way back in: attach without --multiprog joins the chain again.
  const again = await l.lvsOk(['attach', 'eth0', '--mode', 'native']);
  assert.match(again, /sharing it by tail calls/);
  await l.lvsOk(['-R'], l.director.ns, rules); // the last detach took the configuration with it
  const back = await l.curl(url(v), { count: 4 });
  assert.ok(!back.includes(''), JSON.stringify(back));
});

test('a program that is neither lvs-xdp\'s root nor a dispatcher is refused unless --force', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const l = lab();
  const ns = l.director.ns;
  execFileSync('ip', ['-n', ns, 'link', 'add', 'fx0', 'type', 'veth', 'peer', 'name', 'fx1']);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'fx0', 'up']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'fx1', 'up']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'dev', 'fx0', 'xdpgeneric', 'obj', `${repoRoot()}/bpf/floors.o`, 'sec', 'xdp', 'program', 'floor_pass']);
    const r = await l.lvs(['attach', 'fx0', '--multiprog', '--mode', 'generic']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /fx0 already has an XDP program attached \(id \d+, floor_pass\) that is neither lvs-xdp's root nor a dispatcher/);
    const forced = await l.lvsOk(['attach', 'fx0', '--multiprog', '--mode', 'generic', '--force']);
    assert.match(forced, /attached to fx0 \(generic mode, sharing it by tail calls/);
    await l.lvsOk(['detach', 'fx0']);
    const q = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show', 'fx0'], { encoding: 'utf8' }))[0];
    assert.equal(q.xdp, undefined, 'no other program in fx0\'s slots: the root went with lvs-xdp');
  } finally {
    spawnSync('ip', ['-n', ns, 'link', 'del', 'fx0']);
  }
});
