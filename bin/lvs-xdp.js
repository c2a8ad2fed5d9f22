#!/usr/bin/env node
// Entry point: the CLI, bundled (npm run setup builds it: tsc, then scripts/bundle.mjs).
import('../dist/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
    console.error(`lvs-xdp: not built yet, or a module is missing (${e.message}); run \`npm run setup\` first`);
    process.exit(1);
  }
  throw e;
});
