// A veth peer without an XDP program in another namespace: frames the director sends back out
// with XDP_TX vanish at the peer. In the lab the director's eth0 is a veth whose peer `dir` sits
// in the switch's namespace with an XDP_PASS program; taken off, `lvs-xdp doctor` reaches the peer
// through its netns id, fails naming it and the command that fixes it (exit 1), and the fix as
// printed makes it ok again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { check, checkIn, installRoot } from '../../src/lab/index.js';
import { useLab, NEEDS_ROOT } from './helpers.js';

interface Finding { verdict: string; check: string; detail: string; fix?: string }

const lab = useLab('dveth', { realservers: 1 }, (l) => l.attachDirector({ mode: 'native' }).then(() => undefined));

test('doctor: a veth peer without XDP program in another namespace is a failure with its fix; exit 1', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const L = lab();
  const peer = async () => {
    const r = await L.lvs(['doctor', '--json', '--no-neigh']);
    return { code: r.code, f: (JSON.parse(r.stdout) as Finding[]).find((x) => x.check === 'interface eth0 veth peer')! };
  };
  const ok = await peer();
  console.log(`peer with XDP_PASS: ${ok.f.verdict} ${ok.f.detail}`);
  assert.equal(ok.f.verdict, 'ok');
  assert.match(ok.f.detail, new RegExp(`dir in namespace ${L.net} runs an XDP program`));
  assert.equal(ok.code, 0);

  await checkIn(L.net, 'ip', ['link', 'set', 'dev', 'dir', 'xdpdrv', 'off']);
  const bad = await peer();
  console.log(`peer without: ${bad.f.verdict} ${bad.f.detail}\n  fix: ${bad.f.fix}`);
  assert.equal(bad.code, 1);
  assert.equal(bad.f.verdict, 'fail');
  assert.match(bad.f.detail, new RegExp(`^dir in namespace ${L.net} runs no native XDP program: on veth, XDP_TX`));
  assert.match(bad.f.fix!, new RegExp(`ip -n ${L.net} link set dev dir xdpdrv obj PROG\\.o sec xdp`));

  // The fix as printed, with the object it names.
  const floors = join(installRoot(), 'bpf', 'floors.o');
  await check('ip', ['-n', L.net, 'link', 'set', 'dev', 'dir', 'xdpdrv', 'obj', floors, 'sec', 'xdp', 'program', 'floor_pass']);
  const fixed = await peer();
  assert.equal(fixed.f.verdict, 'ok');
  assert.equal(fixed.code, 0);
});
