export * from './address.js';
export * from './types.js';
export * from './timeouts.js';
export * from './validate.js';
export { ConfigError } from './config-error.js';
