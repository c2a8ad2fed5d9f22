/** The namespace lab used by `lvs-xdp demo` and the end-to-end tests (see lab.ts). */
export * from './lab.js';
export * from './exec.js';
export type * from './client.js';
