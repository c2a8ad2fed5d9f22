/**
 * The operations log: pino, one line per state change. `json` writes pino's JSON lines (for
 * journald / log shippers); `text` writes them through pino-pretty on one line each
 * (`time LEVEL: message key=value ...`), synchronously so nothing is lost on exit.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';
import type prettyFactory from 'pino-pretty';

export type LogFormat = 'json' | 'text';
export type { Logger };

export function createLogger(format: LogFormat, opts: { level?: string; destination?: DestinationStream | NodeJS.WritableStream } = {}): Logger {
  const base = { level: opts.level ?? 'info', base: { pid: process.pid }, messageKey: 'msg' };
  if (format === 'json') {
    return pino({ ...base, timestamp: pino.stdTimeFunctions.isoTime }, (opts.destination as DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: true }));
  }
  // Loaded for text only: JSON lines (the small-box profile's) do without it and its modules.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof prettyFactory;
  const stream = pretty({
    colorize: false, singleLine: true, sync: true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname',
    ...(opts.destination ? { destination: opts.destination as NodeJS.WritableStream } : {}),
  });
  return pino(base, stream);
}
