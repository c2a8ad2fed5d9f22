/** Whether an argv is ipvsadm syntax (`-A -t ...`, `-Ln`) rather than a subcommand; kept apart so
 *  that main.ts can decide without loading the director. */
const IPVSADM_FIRST = /^(-[AEDCaedLlSRZc]|--(add|edit|delete)-(service|server)|--clear|--list|--save|--restore|--zero|--connection)/;

export function isIpvsadmInvocation(argv: readonly string[]): boolean {
  return argv.some((a) => IPVSADM_FIRST.test(a)) && !argv.some((a) => a === '--help' || a === '-h');
}
