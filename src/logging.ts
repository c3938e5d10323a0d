/**
 * The process logger: pino's JSON lines for collectors (off a terminal, as in a container), short
 * coloured lines through pino-pretty for a person at a terminal. Either way each line's message says
 * what happened in words; the fields carry the same facts for machines.
 */
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { build as PrettyStream } from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

/** Pretty on a terminal, JSON otherwise; NO_COLOR turns colours off, not the format. */
export function chooseLogFormat(output: { readonly isTTY?: boolean }): LogFormat {
  return output.isTTY === true ? 'pretty' : 'json';
}

export interface LoggerOptions {
  readonly level: string;
  readonly format: LogFormat;
  /** Where lines go; default stdout. */
  readonly destination?: NodeJS.WritableStream;
  readonly colour?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  if (options.format === 'json') return pino({ level: options.level }, destination);
  // Loaded only for a terminal: a server whose logs go to a file or a collector does without it.
  const prettyStream = (createRequire(import.meta.url)('pino-pretty') as { build: typeof PrettyStream }).build;
  const pretty = prettyStream({
    destination,
    // In-process and synchronous: no worker thread at start, and the last line before an exit is not lost.
    sync: true,
    colorize: options.colour ?? !process.env['NO_COLOR'],
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname',
    // The message says it in words; the fields are for machines. An error's own message joins the line.
    hideObject: true,
    messageFormat: (log, messageKey) => {
      const message = String(log[messageKey] ?? '');
      const error = log['err'];
      return typeof error === 'object' && error !== null && 'message' in error ? `${message}: ${String(error.message)}` : message;
    },
  });
  return pino({ level: options.level }, pretty);
}
