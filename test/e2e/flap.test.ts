// State that heals (namespace lab, real TCP): one client, two LVS-DR realservers behind VIP
// dr4:80. In order, one lab:
//   - under `ip netns exec` (which hides the host's bpffs) every command that reads the state is
//     refused with the nsenter hint, and detach does not "detach from nothing": the director
//     keeps forwarding with its configuration;
//   - a refused attach leaves nothing behind (no state directory, no pins);
//   - the director's interface is deleted and created again (new ifindex): doctor says so and
//     advises `attach`, `attach eth0` attaches it again with the running configuration kept (the
//     same -S), and the director serves; long-lived TCP downloads open across the flap continue
//     on their realservers (the pinned connection table outlived the interface).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, installCleanupHandlers, testPrefix, run, cliArgv, shIn, installRoot, labEnv, waitFor } from '../../src/lab/index.js';
import { NEEDS_ROOT } from './helpers.js';

let lab: Lab;
let vip = '';
let vip6 = '';

async function burst(count = 20) {
  return lab.burst({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, count, concurrency: 4, timeoutMs: 5000 });
}

/** lvs-xdp under `ip netns exec NS` (the way the README tells people not to). */
function ipNetnsExec(args: string[], env: Record<string, string> = {}) {
  const [node, argv] = cliArgv(args);
  return run('ip', ['netns', 'exec', lab.director.ns, node, ...argv], { env: labEnv(env) });
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('flap'), clients: 1, clientAddresses: 4, realservers: 2 });
  try {
    vip = lab.vips.dr4;
    vip6 = lab.vips.dr6;
    await lab.attachDirector({ mode: 'native' });
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [vip, vip6])));
    await lab.startServers({ httpPort: 80 });
    await lab.lvsOk(['-R'], lab.director.ns, [
      `-A -t ${vip}:80 -s mh`, ...lab.realservers.map((r) => `-a -t ${vip}:80 -r ${r.v4} -g -w 1`),
      `-A -t [${vip6}]:80 -s mh`, ...lab.realservers.map((r) => `-a -t [${vip6}]:80 -r [${r.v6}] -g -w 1`),
    ].join('\n') + '\n');
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => lab?.destroy());

test('flap: under ip netns exec the hidden bpffs is refused with the nsenter hint; detach leaves the director running', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const saved = await lab.lvsOk(['-S', '-n']);
  for (const args of [['detach'], ['-L', '-n'], ['status'], ['-C']]) {
    const r = await ipNetnsExec(args);
    assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /is not a BPF file system here/, args.join(' '));
    assert.match(r.stderr, /nsenter --net=\/run\/netns\/NS/, args.join(' '));
    assert.doesNotMatch(r.stdout, /detached/);
  }
  // Nothing changed: the same configuration, the program on eth0, and it serves.
  assert.equal(await lab.lvsOk(['-S', '-n']), saved);
  assert.match(await lab.lvsOk(['status']), /interface +eth0 \(ifindex \d+\) native, since/);
  const b = await burst();
  assert.equal(b.failed, 0, b.errors.join('; '));
});

test('flap: a refused attach leaves nothing behind', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const pinDir = `/sys/fs/bpf/lvs-xdp-flap-${process.pid}`;
  const stateDir = `/run/lvs-xdp/lvs-xdp-flap-${process.pid}`;
  const env = { LVS_XDP_PIN_DIR: pinDir, LVS_XDP_STATE_DIR: stateDir };
  // An interface that does not exist, a hidden bpffs: refused, and neither directory is made.
  const [node, argv] = cliArgv(['attach', 'nosuch0']);
  const r1 = await run('nsenter', [`--net=/run/netns/${lab.director.ns}`, '--', node, ...argv], { env: { ...process.env, ...env } });
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /nosuch0/);
  assert.equal(existsSync(stateDir), false, 'no state directory left');
  assert.equal(existsSync(pinDir), false, 'no pin directory left');
  const r3 = await run('ip', ['netns', 'exec', lab.director.ns, node, ...cliArgv(['attach', 'eth0'])[1]], { env: { ...process.env, ...env } });
  assert.notEqual(r3.code, 0);
  assert.match(r3.stderr, /is not a BPF file system here/);
  assert.equal(existsSync(stateDir), false, 'no state directory left under ip netns exec');
  // Another XDP program on the interface refuses a first attach: no program loaded, no pins.
  await shIn(lab.clients[0]!.ns, `ip link add fl0 type veth peer name fl1 && ip link set fl0 up && ip link set fl1 up && ip link set fl0 xdpdrv obj ${join(installRoot(), 'bpf', 'floors.o')} sec xdp program floor_pass`);
  const [n2, a2] = cliArgv(['attach', 'fl0']);
  const r4 = await run('nsenter', [`--net=/run/netns/${lab.clients[0]!.ns}`, '--', n2, ...a2], { env: { ...process.env, ...env } });
  assert.notEqual(r4.code, 0);
  assert.match(r4.stderr, /already has an XDP program attached/);
  assert.equal(existsSync(stateDir), false, 'no state directory left after a foreign program refused the attach');
  assert.equal(existsSync(pinDir), false, 'no pins left');
  assert.equal(existsSync(`${pinDir}-chain`), false, 'no lvs_chain pinned beside them (src/director/chain.ts chainDir)');
});

test('flap: an interface deleted and created again is attached again by attach, with the running configuration kept', { skip: NEEDS_ROOT, timeout: 300_000 }, async () => {
  const saved = await lab.lvsOk(['-S', '-n']);
  // Downloads that stay open across the flap: one line "<realserver> <i>" every 50 ms.
  const c = lab.clients[0]!;
  const streams = c.v4s.map((source) => ({ h: lab.stream(`http://${vip}/stream?seconds=280&ms=50`, { source }), rs: '', exit: undefined as number | undefined }));
  await waitFor('every download started', () => streams.every((x) => x.h.lines.length > 0), 15_000, 50);
  for (const x of streams) {
    x.rs = x.h.lines[0]!.split(' ')[0]!;
    void x.h.exited.then((code) => { x.exit = code; });
  }
  const d = lab.director;
  // The client knows the director's MAC for both VIPs (the stream's traffic keeps the IPv4 entry
  // confirmed; TCP over DR even confirms it with the realservers' replies).
  await shIn(c.ns, `ping -6 -c 1 -W 2 ${vip6} >/dev/null`);
  const lladdr = async (addr: string) => /lladdr (\S+)/.exec(await shIn(c.ns, `ip neigh show ${addr}`))?.[1];
  const oldMac = await lladdr(vip);
  assert.ok(oldMac && oldMac === (await lladdr(vip6)), 'the client has a neighbour entry for both VIPs');
  const floors = join(installRoot(), 'bpf', 'floors.o');
  // The flap: eth0 (and its switch port) gone, then a new pair wired the way the lab builds it.
  const down = Date.now();
  await shIn(d.ns, 'ip link del eth0');
  await run('ip', ['link', 'add', 'eth0', 'netns', d.ns, 'type', 'veth', 'peer', 'name', 'dir', 'netns', lab.net]);
  await shIn(lab.net, `ip link set dir master br0 up && ip link set dir xdpdrv obj ${floors} sec xdp program floor_pass`);
  await shIn(d.ns, [
    `ip addr add ${d.v4}/24 dev eth0`, `ip addr add ${vip}/32 dev eth0`, `ip -6 addr add ${vip6}/128 dev eth0 nodad`, 'ethtool -K eth0 tx off >/dev/null', 'ip link set eth0 up',
  ].join(' && '));
  const doctor = JSON.parse((await lab.lvs(['doctor', '--json'])).stdout) as { verdict: string; check: string; fix?: string }[];
  const f = doctor.find((x) => x.check === 'attached eth0')!;
  assert.equal(f.verdict, 'fail');
  assert.match(f.fix!, /^lvs-xdp attach eth0 \(attaches it again, keeping the running configuration\)/);
  const out = await lab.lvsOk(['attach', 'eth0', '--mode', 'native']);
  assert.match(out, /attached to eth0 \(native mode\)/);
  // The new eth0 has a new MAC: attach told the link (gratuitous ARP, unsolicited NA), so the
  // client's entries moved at once instead of timing out on the old MAC (which took 30-70 s).
  assert.match(out, new RegExp(`announced ${vip}, ${vip6} on eth0`));
  const newMac = /link\/ether (\S+)/.exec(await shIn(d.ns, 'ip link show eth0'))![1];
  assert.notEqual(newMac, oldMac);
  await waitFor('the client learnt the new MAC for both VIPs', async () => (await lladdr(vip)) === newMac && (await lladdr(vip6)) === newMac, 2000, 50);
  // The realservers' retransmissions back off exponentially while the clients' ACKs are lost, so
  // the next one comes at most about as long after the recovery as the outage lasted (slow
  // machines make the outage long: doctor and attach under load took tens of seconds).
  const outageMs = Date.now() - down;
  assert.equal(await lab.lvsOk(['-S', '-n']), saved, 'the configuration is kept');
  const st = JSON.parse(await lab.lvsOk(['status', '--json'])) as { interfaces: { name: string; linked: boolean }[] };
  assert.deepEqual(st.interfaces.map((i) => [i.name, i.linked]), [['eth0', true]]);
  const b = await burst(30);
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.deepEqual(Object.keys(b.counts).sort(), ['rs1', 'rs2']);
  // The downloads opened before the flap: every one gets data again, from its own realserver.
  const from = streams.map((x) => x.h.lines.length);
  await waitFor('every download receives data after the flap', () => streams.every((x, i) => x.exit !== undefined || x.h.lines.length >= from[i]! + 5), Math.max(30_000, 2 * outageMs + 10_000), 50);
  const reset = streams.filter((x) => x.exit !== undefined).length;
  const switched = streams.filter((x, i) => x.h.lines.slice(from[i]).some((line) => line.split(' ')[0] !== x.rs)).length;
  assert.deepEqual({ reset, switched }, { reset: 0, switched: 0 }, `${streams.length} downloads across the interface flap`);
  for (const x of streams) x.h.kill();
  // Attached once more: now it really is attached.
  const again = await lab.lvs(['attach', 'eth0']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already attached to eth0/);
});
