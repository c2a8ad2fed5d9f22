// Makes the README's screenshot of the status page (docs/status-page.png) from a real director:
// a namespace lab (one client, three LVS-DR realservers), `lvs-xdp run` with HTTP checks, a
// minute of uneven traffic for the sparklines, one realserver stopped (down, its services
// degraded) and a reload of a broken file (kept running configuration, marked on the page);
// then headless Chromium (Debian's chromium, through playwright-core) takes the picture.
// Run by scripts/screenshot.sh as root after scripts/setup.sh; the lab is always removed.
import { writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, checkIn, runIn, spawnIn, cliArgv, labEnv, waitFor, sleep } from '../dist/src/lab/index.js';

const out = resolve(process.argv[2] ?? 'docs/status-page.png');
const seconds = Number(process.env.SCREENSHOT_TRAFFIC_SECONDS ?? 90);
const V1 = '198.51.100.210';
const V2 = '198.51.100.211';
const LISTEN = '127.0.0.1:9469';

function config(lab) {
  const [r1, r2, r3] = lab.realservers;
  return `services:
  - vip: ${V1}
    port: 80
    scheduler: mh
    health-check: { type: http, path: /, interval: 1, timeout: 0.5, rise: 2, fall: 2 }
    realservers:
      - { address: ${r1.v4} }
      - { address: ${r2.v4} }
      - { address: ${r3.v4} }
  - vip: ${V2}
    port: 80
    scheduler: wrr
    health-check: { type: http, path: /, interval: 1, timeout: 0.5, rise: 2, fall: 2 }
    realservers:
      - { address: ${r1.v4}, weight: 3 }
      - { address: ${r2.v4} }
`;
}

installCleanupHandlers();
const lab = await Lab.create({ prefix: testPrefix('shot'), clients: 1, clientAddresses: 4, realservers: 3 });
let run;
try {
  const c = lab.clients[0];
  for (const v of [V1, V2]) await checkIn(c.ns, 'ip', ['route', 'add', `${v}/32`, 'via', lab.director.v4]);
  await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [V1, V2])));
  await lab.startServers({ httpPort: 80 });
  const file = join(lab.dir, 'director.yaml');
  writeFileSync(file, config(lab));
  const [node, argv] = cliArgv(['run', '-f', file, '-i', 'eth0', '--mode', 'native', '--listen', LISTEN]);
  run = spawnIn(lab.director.ns, node, argv, { stdio: 'ignore', env: labEnv() });
  await waitFor('run listening', async () => (await runIn(lab.director.ns, 'curl', ['-sf', `http://${LISTEN}/healthz`])).code === 0, 30_000, 200);

  // Uneven traffic, so that the sparklines have a shape: waves of bursts to both services.
  const until = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < until; i++) {
    const n = 4 + Math.round(12 * (1 + Math.sin(i / 3)));
    await Promise.all([V1, V2].map((vip) => lab.burst({ url: `http://${vip}/`, sources: c.v4s, count: n, concurrency: 4, timeoutMs: 3000 })));
    await sleep(400);
    if (Math.abs(until - Date.now() - 15_000) < 600) {
      // rs3 stops 15 s before the picture: down, S1 degraded.
      const pids = execFileSync('ip', ['netns', 'pids', lab.realservers[2].ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
      for (const p of pids) process.kill(p, 'SIGKILL');
    }
  }
  // A broken file and SIGHUP: the reload fails, the running configuration stays, the page says so.
  writeFileSync(file, `${config(lab)}  - vip: not-an-address\n    port: 80\n`);
  run.kill('SIGHUP');
  // Traffic goes on while the picture is taken, so the rates are not zero.
  let more = true;
  const background = (async () => {
    while (more) await Promise.all([V1, V2].map((vip) => lab.burst({ url: `http://${vip}/`, sources: c.v4s, count: 12, concurrency: 4, timeoutMs: 3000 })));
  })();

  const { chromium } = await import('playwright-core');
  const wrapper = join(lab.dir, 'chromium-in-director');
  writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${lab.director.ns} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 600 } });
    await page.goto(`http://${LISTEN}/`);
    await page.waitForFunction(() => Number(document.body.getAttribute('data-polls')) >= 3, undefined, { timeout: 20_000 });
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await browser.close();
    more = false;
    await background;
  }
  console.log(`wrote ${out}`);
} finally {
  run?.kill('SIGTERM');
  await sleep(500);
  lab.destroy();
}
