// `lvs-xdp demo` as a user runs it (under its own namespace prefix so as not to meet a user's
// demo): it shows balanced answers, the -L -n --stats view and the counters, and leaves nothing
// behind; a second run (--keep) leaves a working lab that --teardown removes; Ctrl-C (SIGINT) in
// the middle removes everything too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { NEEDS_ROOT } from './helpers.js';
import { cliArgv, labNamespaces, removeLab, run, runIn, testPrefix, waitFor } from '../../src/lab/index.js';

const prefix = testPrefix('demo');
after(() => {
  if (!NEEDS_ROOT) removeLab(prefix);
});

function leftovers(): string[] {
  const out = [...labNamespaces(prefix)];
  for (const base of ['/sys/fs/bpf', '/run/lvs-xdp']) {
    try {
      out.push(...readdirSync(base).filter((f) => f.includes(`@${prefix}-`)).map((f) => `${base}/${f}`));
    } catch {
      // none
    }
  }
  if (existsSync(`/run/lvs-xdp-lab/${prefix}`)) out.push(`/run/lvs-xdp-lab/${prefix}`);
  return out;
}

function demo(...args: string[]) {
  const [node, a] = cliArgv(['demo', '--prefix', prefix, ...args]);
  return run(node, a, { timeoutMs: 120_000 });
}

test('demo: balanced DR and Tun answers, the stats view and counters; nothing left', { skip: NEEDS_ROOT, timeout: 240_000 }, async (t) => {
  const r = await demo('--requests', '8');
  assert.equal(r.code, 0, `demo exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /attached to eth0 \(native mode\)/);
  const answers = r.stdout.slice(r.stdout.indexOf('Which realserver answered'), r.stdout.indexOf('$ lvs-xdp -L -n --stats'));
  for (const label of ['tcp 198.51.100.200:80 ', 'tcp [2001:db8:100::200]:80', 'tcp 198.51.100.201:80 ', 'tcp [2001:db8:100::201]:80', 'udp 198.51.100.200:9000']) {
    const line = answers.split('\n').find((l) => l.includes(label));
    assert.ok(line, `no answer line for ${label}:\n${answers}`);
    const nums = [...line.matchAll(/(\d+) \(\d\)/g)].map((m) => Number(m[1]));
    assert.equal(nums.length, 3, line);
    assert.ok(nums.every((n) => n > 0), `a realserver got nothing: ${line}`);
    assert.match(line, /\s0$/, `failed requests: ${line}`);
  }
  assert.match(r.stdout, /Prot LocalAddress:Port\s+Conns\s+InPkts/);
  assert.match(r.stdout, /TCP\s+198\.51\.100\.201:80\s+6\d\s/);
  assert.match(r.stdout, /fwd_dr\s+fwd\s+\d+/);
  assert.match(r.stdout, /fwd_tun\s+fwd\s+\d+/);
  assert.match(r.stdout, /OK: 0 failed request/);
  assert.deepEqual(leftovers(), [], 'left behind');
  t.diagnostic(answers.trim());
});

test('a second run works: demo --keep leaves a working lab and prints how to explore it; demo --teardown removes it', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const r = await demo('--keep', '--requests', '6');
  assert.match(r.stdout, /OK: 0 failed request/);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`nsenter --net=/run/netns/${prefix}-dir \\S*node \\S+/bin/lvs-xdp\\.js -L -n`));
  assert.match(r.stdout, new RegExp(`nsenter --net=/run/netns/${prefix}-c1 curl http://198\\.51\\.100\\.200/`));
  assert.match(r.stdout, /lvs-xdp\.js detach/);
  assert.match(r.stdout, new RegExp(`demo --teardown --prefix ${prefix}`));
  assert.ok(labNamespaces(prefix).length >= 7);
  // The kept lab serves: the command the demo printed works.
  const c = await runIn(`${prefix}-c1`, 'curl', ['-sS', '--max-time', '5', 'http://198.51.100.200/']);
  assert.match(c.stdout, /^rs[123]$/m, c.stderr);
  const [node, a] = cliArgv(['-L', '-n']);
  const list = await runIn(`${prefix}-dir`, node, a);
  assert.match(list.stdout, /TCP\s+198\.51\.100\.200:80 mh/);

  const td = await demo('--teardown');
  assert.equal(td.code, 0, td.stderr);
  assert.match(td.stdout, /removed .*-dir/);
  assert.deepEqual(leftovers(), []);
});

test('demo: SIGINT (Ctrl-C) while it runs removes the lab', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const [node, a] = cliArgv(['demo', '--prefix', prefix, '--requests', '50']);
  const child = spawn(node, a, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    await waitFor('the demo to configure its services', () => out.includes('Sending '), 60_000, 50);
    assert.ok(labNamespaces(prefix).length >= 7);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
  } finally {
    child.kill('SIGKILL');
  }
  assert.deepEqual(leftovers(), []);
});
