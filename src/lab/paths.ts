/** Where a lab keeps its own files (process ids, logs, server roots): LAB_RUN_DIR/PREFIX. */
export const LAB_RUN_DIR = '/run/lvs-xdp-lab';
/** Where lvs-xdp keeps a director's pins and state (a lab removes those of its namespaces). */
export const BPFFS = '/sys/fs/bpf';
export const LVS_RUN_DIR = '/run/lvs-xdp';
/** A lab prefix: namespaces are PREFIX-ROLE. */
export const NAME_RE = /^lvs[a-z0-9-]{1,40}$/;
