/**
 * ConfigError lives in src/errors.ts: (message, { location, field }, { hint }) and prefixes the
 * message with `location: field: `. Re-exported so the model's modules import it from one place.
 */
export { ConfigError } from '../errors.js';
