/** lvs-xdp's version, from package.json (read once). */
import { readFileSync } from 'node:fs';
import { inInstall } from './install-root.js';

export const VERSION = (JSON.parse(readFileSync(inInstall('package.json'), 'utf8')) as { version: string }).version;
