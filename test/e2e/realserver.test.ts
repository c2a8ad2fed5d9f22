// `lvs-xdp realserver` in network namespaces: the built CLI run with nsenter, real ARP requests,
// and real IP-in-IP packets (crafted with python raw sockets) answered by a UDP server that
// listens on the VIP. Everything created is removed in finally blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { withNetns, vethPair, uniqueName, type Netns } from '../lib/netns.js';
import { repoRoot } from '../lib/paths.js';

const BIN = join(repoRoot(), 'bin', 'lvs-xdp.js');

interface Report { dev?: string; changed: string[]; unchanged: string[] }
interface CheckJson { ok: boolean; dev: string; items: { id: string; status: string; fix: string[]; message: string }[]; counters?: Record<string, string> }

function cli(ns: Netns, ...args: string[]) {
  return ns.run(process.execPath, [BIN, 'realserver', ...args]);
}

function cliJson<T>(ns: Netns, ...args: string[]): { status: number; json: T; stderr: string } {
  const r = cli(ns, ...args, '--json');
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return { status: r.status, json, stderr: r.stderr };
}

const statePath = (ns: Netns) => `/run/lvs-xdp/lvs-xdp-realserver@${ns.name}`;
const pinPath = (ns: Netns) => `/sys/fs/bpf/lvs-xdp-realserver@${ns.name}`;

/** Undoes whatever a failed test left: teardown through the CLI, then the directories. */
function cleanupRealserver(list: Netns[]): void {
  for (const ns of list) {
    try {
      cli(ns, 'teardown');
    } catch {
      // best effort
    }
    rmSync(pinPath(ns), { recursive: true, force: true });
    rmSync(statePath(ns), { recursive: true, force: true });
  }
}

const ARP_PROBE = `
import socket, struct, sys, select, time, json
ifname, sip, targets, timeout = sys.argv[1], sys.argv[2], sys.argv[3].split(','), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifname, 0))
mac = s.getsockname()[4]
res = {}
for tip in targets:
    arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(sip) + b'\\0' * 6 + socket.inet_aton(tip)
    s.send(b'\\xff' * 6 + mac + struct.pack('!H', 0x0806) + arp)
    res[tip] = None
    end = time.monotonic() + timeout
    while res[tip] is None:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        d = s.recv(2048)
        if len(d) >= 42 and d[20:22] == b'\\0\\2' and socket.inet_ntoa(d[28:32]) == tip:
            res[tip] = d[22:28].hex()
print(json.dumps(res))
`;

/** ARP requests for each target from `src` on `dev`; the replying MAC per target, or null. */
function arpProbe(ns: Netns, dev: string, src: string, targets: string[]): Record<string, string | null> {
  return JSON.parse(ns.exec('python3', ['-c', ARP_PROBE, dev, src, targets.join(','), '1.5'])) as Record<string, string | null>;
}

const UDP_ECHO = `
import socket, select, sys
socks = []
for fam, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, int(sys.argv[3])))
    socks.append(s)
print('ready', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, addr = s.recvfrom(2048)
        s.sendto(b'echo:' + data, addr)
`;

// Sends a UDP datagram client -> VIP inside an IPv4 (protocol 4 / 41) or IPv6 (next header 4 /
// 41) packet to the realserver's address; the kernel writes the outer header. Prints the reply.
const TUNNEL_CLIENT = `
import socket, struct, sys, select, json
outer, inner, client, vip, rip, port, payload, attempts, timeout = sys.argv[1:10]
port, attempts, timeout, payload = int(port), int(attempts), float(timeout), payload.encode()
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
fam = socket.AF_INET if inner == '4' else socket.AF_INET6
u = socket.socket(fam, socket.SOCK_DGRAM)
u.bind((client, 0))
sport = u.getsockname()[1]
src, dst = socket.inet_pton(fam, client), socket.inet_pton(fam, vip)
ulen = 8 + len(payload)
pseudo = src + dst + (struct.pack('!BBH', 0, 17, ulen) if inner == '4' else struct.pack('!I3xB', ulen, 17))
udp = struct.pack('!HHHH', sport, port, ulen, 0) + payload
udp = udp[:6] + struct.pack('!H', csum(pseudo + udp) or 0xffff) + udp[8:]
if inner == '4':
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, 1, 0x4000, 64, 17, 0, src, dst)
    packet, proto = h[:10] + struct.pack('!H', csum(h)) + h[12:] + udp, 4
else:
    packet, proto = struct.pack('!IHBB', 6 << 28, ulen, 17, 64) + src + dst + udp, 41
raw = socket.socket(socket.AF_INET if outer == '4' else socket.AF_INET6, socket.SOCK_RAW, proto)
out = {'reply': None}
for i in range(attempts):
    raw.sendto(packet, (rip, 0))
    if select.select([u], [], [], timeout)[0]:
        data, addr = u.recvfrom(2048)
        out = {'reply': data.decode(), 'from': addr[0], 'port': addr[1]}
        break
print(json.dumps(out))
`;

function tunnelSend(ns: Netns, o: { outer: 4 | 6; inner: 4 | 6; client: string; vip: string; rip: string; payload: string; attempts?: number }) {
  const out = ns.exec('python3', ['-c', TUNNEL_CLIENT, String(o.outer), String(o.inner), o.client, o.vip, o.rip, '5000', o.payload,
    String(o.attempts ?? 5), '1']);
  return JSON.parse(out) as { reply: string | null; from?: string; port?: number };
}

function wrongIds(c: CheckJson): string[] {
  return c.items.filter((i) => i.status === 'wrong').map((i) => i.id);
}

test('DR: setup makes check pass and silences ARP for the VIP; a broken realserver is reported with fixes; teardown restores exactly', async () => {
  await withNetns(['lvsrc', 'lvsrr'], async ([c, r]) => {
    const cdev = uniqueName('lvsrv');
    const rdev = uniqueName('lvsrv');
    vethPair(c!, cdev, r!, rdev);
    c!.ip('addr', 'add', '10.77.0.1/24', 'dev', cdev);
    r!.ip('addr', 'add', '10.77.0.2/24', 'dev', rdev);
    r!.ip('route', 'add', 'default', 'via', '10.77.0.1');
    const VIP_A = '10.77.100.1'; // put on lo by the administrator before setup: teardown keeps it
    const VIP_B = '10.77.100.2'; // added by setup
    r!.ip('addr', 'add', `${VIP_A}/32`, 'dev', 'lo');
    r!.setSysctl('net/ipv4/conf/all/arp_announce', 1); // not the default: teardown must restore 1

    // Without the sysctls the realserver answers ARP for a VIP on lo: the ARP problem.
    assert.notEqual(arpProbe(c!, cdev, '10.77.0.1', [VIP_A])[VIP_A], null);

    const before = cliJson<CheckJson>(r!, 'check', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(before.status, 1);
    assert.deepEqual(wrongIds(before.json), [`vip:${VIP_B}`, 'arp_ignore', 'arp_announce']);

    const s1 = cliJson<Report>(r!, 'setup', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(s1.status, 0, s1.stderr);
    assert.equal(s1.json.dev, rdev);
    assert.deepEqual(s1.json.changed, [
      'net.ipv4.conf.all.arp_ignore: 0 -> 1',
      'net.ipv4.conf.all.arp_announce: 1 -> 2',
      `${VIP_B}/32 added to lo`,
    ]);
    assert.ok(s1.json.unchanged.includes(`${VIP_A}/32 on lo already`));

    const ok = cliJson<CheckJson>(r!, 'check', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(ok.status, 0);
    assert.ok(ok.json.ok);
    assert.deepEqual(wrongIds(ok.json), []);

    // The realserver still answers ARP for its own address, no longer for the VIPs.
    const arp = arpProbe(c!, cdev, '10.77.0.1', ['10.77.0.2', VIP_A, VIP_B]);
    assert.notEqual(arp['10.77.0.2'], null);
    assert.equal(arp[VIP_A], null);
    assert.equal(arp[VIP_B], null);

    // Setup twice: nothing changes, not even the state file.
    const stateFile = `${statePath(r!)}/realserver.json`;
    const recorded = readFileSync(stateFile, 'utf8');
    const s2 = cliJson<Report>(r!, 'setup', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(s2.status, 0);
    assert.deepEqual(s2.json.changed, []);
    assert.equal(readFileSync(stateFile, 'utf8'), recorded);

    // Break it: check names exactly what is wrong, with the fix.
    r!.ip('addr', 'del', `${VIP_B}/32`, 'dev', 'lo');
    r!.setSysctl('net/ipv4/conf/all/arp_ignore', 0);
    const broken = cliJson<CheckJson>(r!, 'check', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(broken.status, 1);
    assert.equal(broken.json.ok, false);
    assert.deepEqual(broken.json.items.filter((i) => i.status === 'wrong').map((i) => [i.id, i.fix]), [
      [`vip:${VIP_B}`, [`ip addr add ${VIP_B}/32 dev lo`]],
      ['arp_ignore', ['sysctl -w net.ipv4.conf.all.arp_ignore=1']],
    ]);
    const text = cli(r!, 'check', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.equal(text.status, 1);
    assert.match(text.stdout, /^wrong {2}arp_ignore effective 0 .*\n {7}fix: sysctl -w net\.ipv4\.conf\.all\.arp_ignore=1$/m);

    // Setup repairs it; the first recorded previous values stay.
    const s3 = cliJson<Report>(r!, 'setup', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B);
    assert.deepEqual(s3.json.changed, ['net.ipv4.conf.all.arp_ignore: 0 -> 1', `${VIP_B}/32 added to lo`]);
    assert.equal(cli(r!, 'check', '--mode', 'dr', '--vip', VIP_A, '--vip', VIP_B).status, 0);

    // Teardown: previous sysctls, the administrator's VIP kept, setup's VIP gone, no state left.
    const t = cliJson<Report>(r!, 'teardown');
    assert.equal(t.status, 0, t.stderr);
    assert.equal(r!.sysctl('net/ipv4/conf/all/arp_ignore'), '0');
    assert.equal(r!.sysctl('net/ipv4/conf/all/arp_announce'), '1');
    const lo = r!.ip('-j', 'addr', 'show', 'dev', 'lo');
    assert.match(lo, new RegExp(`"local":"${VIP_A.replace(/\./g, '\\.')}"`));
    assert.doesNotMatch(lo, new RegExp(`"local":"${VIP_B.replace(/\./g, '\\.')}"`));
    assert.ok(!existsSync(statePath(r!)), 'state directory removed');
    assert.notEqual(arpProbe(c!, cdev, '10.77.0.1', [VIP_A])[VIP_A], null, 'ARP for the VIP is answered again, as before setup');
    assert.deepEqual(cliJson<Report>(r!, 'teardown').json.unchanged, ['nothing recorded to undo']);
  }, cleanupRealserver);
});

test('Tun: setup attaches lvs_decap; real IPIP / IPv6 tunnels reach a UDP server on the VIP; rp_filter and teardown', async () => {
  await withNetns(['lvsrd', 'lvsrr'], async ([d, r]) => {
    for (const ns of [d!, r!]) {
      ns.setSysctl('net/ipv6/conf/default/accept_dad', 0);
      ns.setSysctl('net/ipv6/conf/all/accept_dad', 0);
    }
    // Link 0 carries the tunnels; link 1 is the realserver's route back to a second client
    // network (asymmetric: strict rp_filter on link 0 would drop that client's packets).
    const d0 = uniqueName('lvsrv');
    const r0 = uniqueName('lvsrv');
    const d1 = uniqueName('lvsrv');
    const r1 = uniqueName('lvsrv');
    vethPair(d!, d0, r!, r0);
    vethPair(d!, d1, r!, r1);
    d!.ip('addr', 'add', '10.78.0.1/24', 'dev', d0);
    d!.ip('-6', 'addr', 'add', 'fd00:78::1/64', 'dev', d0, 'nodad');
    d!.ip('addr', 'add', '10.78.1.1/24', 'dev', d1);
    d!.ip('addr', 'add', '10.78.9.1/32', 'dev', 'lo'); // the far client
    r!.ip('addr', 'add', '10.78.0.2/24', 'dev', r0);
    r!.ip('-6', 'addr', 'add', 'fd00:78::2/64', 'dev', r0, 'nodad');
    r!.ip('addr', 'add', '10.78.1.2/24', 'dev', r1);
    r!.ip('route', 'add', 'default', 'via', '10.78.0.1');
    r!.ip('-6', 'route', 'add', 'default', 'via', 'fd00:78::1');
    r!.ip('route', 'add', '10.78.9.0/24', 'via', '10.78.1.1', 'dev', r1);
    r!.setSysctl('net/ipv4/conf/all/rp_filter', 1);
    r!.ip('link', 'set', 'dev', 'lo', 'down');
    const VIP4 = '10.78.100.1';
    const VIP6 = 'fd00:78:100::1';

    const s = cliJson<Report>(r!, 'setup', '--mode', 'tun', '--vip', VIP4, '--vip', VIP6);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(s.json.dev, r0, 'the default route\'s interface');
    assert.deepEqual(s.json.changed.slice(0, 5), [
      'lo: brought up',
      'net.ipv4.conf.all.arp_ignore: 0 -> 1',
      'net.ipv4.conf.all.arp_announce: 0 -> 2',
      `net.ipv4.conf.${r0}.rp_filter: 0 -> 2`,
      `${VIP4}/32 added to lo`,
    ]);
    assert.ok(s.json.changed.some((l) => l.startsWith(`decapsulation program attached to ${r0} (native XDP`)), s.json.changed.join('\n'));
    const xdp = JSON.parse(r!.ip('-j', '-d', 'link', 'show', 'dev', r0)) as { xdp?: { prog?: { name?: string } } }[];
    assert.equal(xdp[0]?.xdp?.prog?.name, 'lvs_decap');
    assert.ok(existsSync(`${pinPath(r!)}/link`));

    const ok = cliJson<CheckJson>(r!, 'check', '--mode', 'tun', '--vip', VIP4, '--vip', VIP6);
    assert.equal(ok.status, 0, JSON.stringify(ok.json.items.filter((i) => i.status !== 'ok')));
    assert.equal(ok.json.items.find((i) => i.id === 'decap')?.status, 'ok');

    await r!.spawn('python3', ['-u', '-c', UDP_ECHO, VIP4, VIP6, '5000'], /ready/);
    const sends = [
      { name: '4in4', outer: 4, inner: 4, client: '10.78.0.1', vip: VIP4, rip: '10.78.0.2' },
      { name: '4in4, client routed back over the other link', outer: 4, inner: 4, client: '10.78.9.1', vip: VIP4, rip: '10.78.0.2' },
      { name: '6in6', outer: 6, inner: 6, client: 'fd00:78::1', vip: VIP6, rip: 'fd00:78::2' },
      { name: '4in6', outer: 6, inner: 4, client: '10.78.0.1', vip: VIP4, rip: 'fd00:78::2' },
      { name: '6in4', outer: 4, inner: 6, client: 'fd00:78::1', vip: VIP6, rip: '10.78.0.2' },
    ] as const;
    for (const x of sends) {
      const got = tunnelSend(d!, { ...x, payload: x.name });
      assert.deepEqual(got, { reply: `echo:${x.name}`, from: x.vip, port: 5000 }, x.name);
    }

    const counted = cliJson<CheckJson>(r!, 'check', '--mode', 'tun', '--vip', VIP4, '--vip', VIP6).json;
    for (const k of ['decap_4in4', 'decap_6in6', 'decap_4in6', 'decap_6in4']) {
      assert.ok(Number(counted.counters?.[k]) >= 1, `${k}: ${JSON.stringify(counted.counters)}`);
    }
    assert.match(counted.items.find((i) => i.id === `decap-vip:${VIP4}`)!.message, /[1-9]\d* packets/);

    // Strict rp_filter on the tunnel link drops the far client's decapsulated packets (not the
    // near one's); check says so with the fix, and setup repairs it.
    r!.setSysctl(`net/ipv4/conf/${r0}/rp_filter`, 1);
    const strict = cliJson<CheckJson>(r!, 'check', '--mode', 'tun', '--vip', VIP4, '--vip', VIP6);
    assert.equal(strict.status, 1);
    assert.deepEqual(strict.json.items.filter((i) => i.status === 'wrong').map((i) => [i.id, i.fix]), [
      ['rp_filter', [`sysctl -w net.ipv4.conf.${r0}.rp_filter=2`]],
    ]);
    assert.equal(tunnelSend(d!, { ...sends[1], payload: 'strict', attempts: 2 }).reply, null);
    assert.equal(tunnelSend(d!, { ...sends[0], payload: 'near' }).reply, 'echo:near');
    assert.deepEqual(cliJson<Report>(r!, 'setup', '--mode', 'tun', '--vip', VIP4, '--vip', VIP6).json.changed, [
      `net.ipv4.conf.${r0}.rp_filter: 1 -> 2`,
    ]);
    assert.equal(tunnelSend(d!, { ...sends[1], payload: 'loose' }).reply, 'echo:loose');

    // Teardown of one VIP for Tun only takes it out of the map and off lo.
    const t1 = cliJson<Report>(r!, 'teardown', '--mode', 'tun', '--vip', VIP6);
    assert.deepEqual(t1.json.changed, [`${VIP6} removed from the decapsulation map`, `${VIP6}/128 removed from lo`]);

    // Full teardown: program detached, pins and state gone, previous sysctls, lo down again.
    const t = cliJson<Report>(r!, 'teardown');
    assert.equal(t.status, 0, t.stderr);
    assert.ok(t.json.changed.includes(`decapsulation program detached from ${r0}`), t.json.changed.join('\n'));
    const after = JSON.parse(r!.ip('-j', '-d', 'link', 'show', 'dev', r0)) as { xdp?: unknown }[];
    assert.equal(after[0]?.xdp, undefined);
    assert.ok(!existsSync(pinPath(r!)), 'pins removed');
    assert.ok(!existsSync(statePath(r!)), 'state removed');
    assert.equal(r!.sysctl(`net/ipv4/conf/${r0}/rp_filter`), '0');
    assert.equal(r!.sysctl('net/ipv4/conf/all/rp_filter'), '1', 'not changed by setup, not touched by teardown');
    assert.equal(r!.sysctl('net/ipv4/conf/all/arp_ignore'), '0');
    const lo = JSON.parse(r!.ip('-j', 'link', 'show', 'dev', 'lo')) as { flags: string[] }[];
    assert.ok(!lo[0]!.flags.includes('UP'), 'lo down again');
  }, cleanupRealserver);
});

test('setup refuses, changing nothing, when a VIP is on another interface or a foreign XDP program holds the device', async () => {
  await withNetns(['lvsrr', 'lvsrc'], async ([r, c]) => {
    const rdev = uniqueName('lvsrv');
    const cdev = uniqueName('lvsrv');
    vethPair(r!, rdev, c!, cdev);
    r!.ip('addr', 'add', '10.79.0.2/24', 'dev', rdev);
    r!.ip('addr', 'add', '10.79.100.1/32', 'dev', rdev);
    const refused = cli(r!, 'setup', '--mode', 'dr', '--vip', '10.79.100.1');
    assert.equal(refused.status, 4, refused.stderr);
    assert.match(refused.stderr, new RegExp(`VIP 10\\.79\\.100\\.1 is on ${rdev} .*ip addr del 10\\.79\\.100\\.1/32 dev ${rdev}`));
    assert.equal(r!.sysctl('net/ipv4/conf/all/arp_ignore'), '0');
    assert.ok(!existsSync(statePath(r!)));

    // A foreign XDP program (bpf/floors.o's first program, attached with bpftool) blocks Tun setup.
    const foreign = `/sys/fs/bpf/${uniqueName('lvsrf')}`;
    try {
      execFileSync('bpftool', ['prog', 'load', join(repoRoot(), 'bpf', 'floors.o'), foreign, 'type', 'xdp']);
      r!.exec('bpftool', ['net', 'attach', 'xdp', 'pinned', foreign, 'dev', rdev]);
    } finally {
      rmSync(foreign, { force: true }); // the attachment keeps the program
    }
    const busy = cli(r!, 'setup', '--mode', 'tun', '--vip', '10.79.100.2', '--dev', rdev);
    assert.equal(busy.status, 4, busy.stderr);
    assert.match(busy.stderr, /another XDP program \(id \d+, floor_\w+\) is attached/);
    assert.ok(!existsSync(statePath(r!)));
    assert.ok(!existsSync(pinPath(r!)));
    const foreignCheck = cliJson<CheckJson>(r!, 'check', '--mode', 'tun', '--vip', '10.79.100.2', '--dev', rdev);
    assert.deepEqual(foreignCheck.json.items.find((i) => i.id === 'decap')?.fix[0], `ip link set dev ${rdev} xdp off`);
    const usage = cli(r!, 'setup', '--mode', 'nat', '--vip', '10.79.100.2');
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--mode: must be dr or tun/);
    const noDev = cli(r!, 'check', '--mode', 'dr', '--vip', '10.79.100.2', '--dev', 'lvsrnone');
    assert.equal(noDev.status, 2);
    assert.match(noDev.stderr, /no network interface 'lvsrnone'/);
  }, cleanupRealserver);
});
