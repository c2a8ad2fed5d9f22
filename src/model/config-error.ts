/**
 * Temporary stand-in for ConfigError until src/errors.ts (owned by another module) lands; then
 * this file becomes `export { ConfigError } from '../errors.js';` and nothing else changes.
 * Same constructor shape as the real one: (message, { location, field, hint }).
 */
export interface ConfigErrorOptions {
  location?: string;
  field?: string;
  hint?: string;
}

export class ConfigError extends Error {
  readonly location: string | undefined;
  readonly field: string | undefined;
  readonly hint: string | undefined;

  constructor(message: string, opts: ConfigErrorOptions = {}) {
    super(message);
    this.name = 'ConfigError';
    this.location = opts.location;
    this.field = opts.field;
    this.hint = opts.hint;
  }
}
