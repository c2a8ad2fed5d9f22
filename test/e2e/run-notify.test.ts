// `lvs-xdp run` runs the notify commands of keepalived's vocabulary (namespace lab, real HTTP
// servers): two LVS-DR realservers behind dr4:80 with http checks, a quorum of 2 and notify
// commands writing their arguments and environment to a file. rs1's server is killed: run calls
// realserver-down and quorum-down (up weight 1 of 2), logs quorum-down and takes rs1 out; rs1's
// server is started again: realserver-up and quorum-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, waitFor } from '../../src/lab/index.js';
import { startRunListening, NEEDS_ROOT } from './helpers.js';

const BOUND_MS = 30_000;
let lab: Lab;
let run: ChildProcess | undefined;
const logs: Record<string, unknown>[] = [];
let calls = '';
let vip = '';

function lines(): string[] {
  return existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : [];
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('runn'), clients: 1, clientAddresses: 1, realservers: 2 });
  try {
    vip = lab.vips.dr4;
    await lab.attachDirector({ mode: 'native' });
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [vip])));
    await lab.startServers({ httpPort: 80 });
    calls = join(lab.dir, 'notify-calls');
    const script = join(lab.dir, 'notify.sh');
    writeFileSync(script, `printf '%s|' "$@" "env:$LVS_EVENT,$LVS_SERVICE,$LVS_REALSERVER,$LVS_UP_WEIGHT,$LVS_QUORUM" >> ${calls}; echo >> ${calls}\n`);
    const rsArgv = `[/bin/sh, ${script}, "{event}", "{address}:{port}", "{weight}"]`;
    const qArgv = `[/bin/sh, ${script}, "{event}", "{service}", "{weight}/{quorum}"]`;
    const file = join(lab.dir, 'run-notify.yaml');
    writeFileSync(file, `services:
  - vip: ${vip}
    port: 80
    scheduler: mh
    table-size: 251
    health-check:
      type: http
      interval: 0.5
      timeout: 0.4
      rise: 1
      fall: 2
      delay-before-retry: 0.2
      warmup: 0
      quorum: 2
      notify: { realserver-down: ${rsArgv}, realserver-up: ${rsArgv}, quorum-down: ${qArgv}, quorum-up: ${qArgv} }
    realservers:
${lab.realservers.map((r) => `      - { address: ${r.v4} }`).join('\n')}
`);
    run = await startRunListening(lab, ['-f', file, '--log-format', 'json', '--listen', '127.0.0.1:9473'], {}, logs, BOUND_MS);
    await waitFor('applied at start', () => logs.find((l) => l.event === 'applied' && l.reason === 'start'), BOUND_MS, 50);
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  run?.kill('SIGKILL');
  lab?.destroy();
});

test('run-notify: realserver and quorum notify commands get their arguments on a real down and up', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const [rs1] = lab.realservers;
  const svc = `tcp ${vip}:80`;
  assert.deepEqual(lines(), [], 'nothing runs for the state run starts in');
  const pids = execFileSync('ip', ['netns', 'pids', rs1!.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) process.kill(p, 'SIGKILL');
  await waitFor('two notify calls after rs1 went down', () => lines().length >= 2, BOUND_MS, 50);
  assert.deepEqual(lines().sort(), [
    `quorum-down|${svc}|1/2|env:quorum-down,${svc},,1,2|`,
    `realserver-down|${rs1!.v4}:80|1|env:realserver-down,${svc},${rs1!.v4},1,2|`,
  ]);
  const q = logs.find((l) => l.event === 'quorum-down');
  assert.deepEqual([q?.service, q?.upWeight, q?.quorum], [svc, 1, 2]);
  await lab.startServers({ httpPort: 80 }, [rs1!]);
  await waitFor('two more notify calls after rs1 came back', () => lines().length >= 4, BOUND_MS, 50);
  assert.deepEqual(lines().slice(2).sort(), [
    `quorum-up|${svc}|2/2|env:quorum-up,${svc},,2,2|`,
    `realserver-up|${rs1!.v4}:80|2|env:realserver-up,${svc},${rs1!.v4},2,2|`,
  ]);
  assert.equal(logs.filter((l) => l.event === 'notify-failed').length, 0);
});
