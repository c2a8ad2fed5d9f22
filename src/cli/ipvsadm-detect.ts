/** Whether an argv is ipvsadm syntax (`-A -t ...`, `-Ln`) rather than a subcommand; kept apart so
 *  that main.ts can decide without loading the director. A subcommand comes first
 *  (`lvs-xdp run --listen ...`), so only an argv that starts with an option can be ipvsadm's, and
 *  only ipvsadm command flags count (bundles such as `-Ln` or `-At` expanded as ipvsadm does). */
import { expandShortOptions } from '../ipvsadm/argv.js';

const COMMAND_FLAGS = new Set([
  '-A', '-E', '-D', '-C', '-a', '-e', '-d', '-L', '-l', '-S', '-R', '-Z', '-c',
  '--add-service', '--edit-service', '--delete-service', '--add-server', '--edit-server', '--delete-server',
  '--clear', '--list', '--save', '--restore', '--zero', '--connection', '--set', '--timeout', '-v',
  '--start-daemon', '--stop-daemon',
]);

export function isIpvsadmInvocation(argv: readonly string[]): boolean {
  if (argv.length === 0) return true; // `ipvsadm` alone lists the table
  if (!argv[0]!.startsWith('-')) return false;
  if (argv.some((a) => a === '--help' || a === '-h')) return false;
  return expandShortOptions(argv).some((a) => COMMAND_FLAGS.has(a.split('=')[0]!));
}
