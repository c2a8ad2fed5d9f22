// The namespace lab builder itself: what it builds (namespaces, addresses, the XDP_PASS program
// on the director's bridge port, checksum offload off), that destroy() leaves nothing behind
// (namespaces, processes, lvs-xdp state directories), and that a new lab removes the leftovers of
// a killed one with the same prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { NEEDS_ROOT } from './helpers.js';
import { Lab, installCleanupHandlers, labNamespaces, removeLab, runIn, testPrefix, type Lab as LabT } from '../../src/lab/index.js';

function stateOf(prefix: string): string[] {
  const out: string[] = [];
  for (const base of ['/sys/fs/bpf', '/run/lvs-xdp']) {
    try {
      out.push(...readdirSync(base).filter((f) => f.includes(`@${prefix}-`)));
    } catch {
      // none
    }
  }
  return out;
}

/** Whether a process runs (zombies, waiting for their parent to reap them, do not count). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('lab: builds the topology and destroy() removes namespaces, processes and lvs-xdp state; leftovers of a killed lab are removed', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  installCleanupHandlers();
  const prefix = testPrefix('lab');
  let lab: LabT | undefined = await Lab.create({ prefix, clients: 2, clientAddresses: 3, realservers: 2, remoteRealservers: 1 });
  try {
    assert.deepEqual(labNamespaces(prefix), [...lab.namespaces].sort());
    assert.deepEqual(lab.namespaces.map((n) => n.slice(prefix.length + 1)).sort(), ['c1', 'c2', 'dir', 'net', 'rs1', 'rs2', 'rs3', 'rt']);
    const addrs = JSON.parse((await runIn(lab.clients[1]!.ns, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as { addr_info: { local: string }[] }[];
    const locals = addrs[0]!.addr_info.map((a) => a.local);
    for (const a of [...lab.clients[1]!.v4s, ...lab.clients[1]!.v6s]) assert.ok(locals.includes(a), `${a} missing on c2: ${locals.join()}`);
    const port = JSON.parse((await runIn(lab.net, 'ip', ['-j', '-d', 'link', 'show', 'dev', 'dir'])).stdout) as { xdp?: { prog?: { name: string } } }[];
    assert.equal(port[0]!.xdp?.prog?.name, 'floor_pass', 'the director\'s bridge port needs an XDP program for XDP_TX');
    const off = (await runIn(lab.clients[0]!.ns, 'ethtool', ['-k', 'eth0'])).stdout;
    assert.match(off, /^tx-checksumming: off/m);
    // Reachability: client -> director, director -> the remote realserver through the router.
    assert.equal(lab.realservers[2]!.remote, true);
    for (const [ns, to] of [[lab.clients[0]!.ns, lab.director.v4], [lab.clients[0]!.ns, lab.director.v6],
      [lab.director.ns, lab.realservers[2]!.v4], [lab.director.ns, lab.realservers[2]!.v6]] as const) {
      const p = await runIn(ns, 'ping', ['-c1', '-W3', to]);
      assert.equal(p.code, 0, `ping ${to} from ${ns}: ${p.stdout}${p.stderr}`);
    }

    // Director and realserver state and running servers, then a "killed" run: kept, not destroyed.
    await lab.attachDirector({ mode: 'native' });
    await lab.setupRealserver(lab.realservers[0]!, 'dr', [lab.vips.dr4]);
    await lab.startServers({}, [lab.realservers[0]!]);
    const pid1 = Number(readFileSync(`${lab.dir}/rs1.ready`, 'utf8'));
    assert.ok(running(pid1));
    assert.ok(stateOf(prefix).includes(`lvs-xdp@${prefix}-dir`), stateOf(prefix).join());
    assert.ok(stateOf(prefix).includes(`lvs-xdp-realserver@${prefix}-rs1`), stateOf(prefix).join());
    lab.kept = true;
    lab.destroy();
    assert.equal(labNamespaces(prefix).length, 8);

    // A new lab with the same prefix removes all of it first.
    lab = await Lab.create({ prefix, clients: 1, realservers: 1 });
    assert.deepEqual(labNamespaces(prefix).map((n) => n.slice(prefix.length + 1)), ['c1', 'dir', 'net', 'rs1']);
    assert.deepEqual(stateOf(prefix), []);
    assert.equal(running(pid1), false, 'the killed lab\'s server still runs');
    await lab.attachDirector({ mode: 'native' });
    await lab.startServers();
    const pid2 = Number(readFileSync(`${lab.dir}/rs1.ready`, 'utf8'));
    lab.destroy();
    assert.equal(running(pid2), false, 'a server survived destroy()');
    lab = undefined;
    assert.deepEqual(labNamespaces(prefix), []);
    assert.deepEqual(stateOf(prefix), []);
    assert.equal(existsSync(`/run/lvs-xdp-lab/${prefix}`), false);

    // State left by namespaces that are gone already is removed too.
    mkdirSync(`/run/lvs-xdp/lvs-xdp@${prefix}-dir`, { recursive: true });
    removeLab(prefix);
    assert.deepEqual(stateOf(prefix), []);
  } finally {
    if (lab) {
      lab.kept = false;
      lab.destroy();
    }
    removeLab(prefix);
  }
});
