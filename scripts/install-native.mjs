#!/usr/bin/env node
// npm's `install` script: makes sure build/Release/lvs_bpf.node (the libbpf binding, native/*.cc)
// exists and loads. The package ships the addon's sources, not a binary: the addon links the
// machine's libbpf.so.1, so one built elsewhere may not load here. It is built with node-gyp
// (npm's own when npm runs this script) when missing, older than its sources, or not loadable.
// Needs g++, make, python3, libbpf-dev, libelf-dev and zlib1g-dev (scripts/setup.sh's list); the
// BPF objects are shipped compiled (bpf/*.o: built once by clang, the same for every machine).
// LVS_XDP_NATIVE=/path/to/lvs_bpf.node names a prebuilt addon instead (checked, not built).
import { createRequire } from 'node:module';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const addon = process.env.LVS_XDP_NATIVE || join(root, 'build', 'Release', 'lvs_bpf.node');
const say = (m) => process.stderr.write(`lvs-xdp install: ${m}\n`);

function loads(path) {
  try {
    require(path);
    return true;
  } catch (e) {
    say(`${path} does not load: ${String(e.message).split('\n')[0]}`);
    return false;
  }
}

function upToDate() {
  if (!existsSync(addon)) return false;
  if (process.env.LVS_XDP_NATIVE) return true;
  const built = statSync(addon).mtimeMs;
  const sources = [join(root, 'binding.gyp'), ...readdirSync(join(root, 'native')).map((f) => join(root, 'native', f))];
  return sources.every((s) => statSync(s).mtimeMs <= built);
}

if (upToDate() && loads(addon)) process.exit(0);
if (process.env.LVS_XDP_NATIVE) {
  say(`LVS_XDP_NATIVE=${addon} is missing or does not load`);
  process.exit(1);
}

// npm passes its bundled node-gyp; outside npm, the one on PATH or in node_modules/.bin.
const gyp = process.env.npm_config_node_gyp;
const cmd = gyp ? [process.execPath, gyp] : ['node-gyp'];
const args = ['rebuild', '--loglevel=error'];
// Debian's nodejs ships the headers (N-API is stable across versions): no download needed.
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
say(`building the native addon: ${[...cmd.slice(gyp ? 1 : 0), ...args].join(' ')}`);
const r = spawnSync(cmd[0], [...cmd.slice(1), ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0 || !loads(addon)) {
  say('the native addon could not be built: install g++, make, python3, libbpf-dev, libelf-dev and zlib1g-dev '
    + '(Debian: apt-get install g++ make python3 libbpf-dev libelf-dev zlib1g-dev) and run `npm rebuild lvs-xdp`, '
    + 'or point LVS_XDP_NATIVE at a built lvs_bpf.node');
  process.exit(1);
}
