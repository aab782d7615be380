/** Logging levels in increasing severity; the names follow Python's logging module, as the prototype's config does. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;

/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The logger the library writes to; inject one to see what the loop does. */
export interface Logger {
  /** Writes a detail useful when debugging. */
  debug(message: string): void;
  /** Writes one line of normal progress. */
  info(message: string): void;
  /** Writes a problem the run recovers from. */
  warn(message: string): void;
  /** Writes a failure. */
  error(message: string): void;
}

/** A logger that drops every message: the library's default, so that it stays quiet unless asked. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Writes messages at or above a level to a stream, one line each, prefixed with the level. */
export class StreamLogger implements Logger {
  readonly #minimum: number;
  readonly #write: (line: string) => void;

  constructor(level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)) {
    this.#minimum = LOG_LEVELS.indexOf(level);
    this.#write = write;
  }

  debug(message: string): void {
    this.#log('DEBUG', message);
  }

  info(message: string): void {
    this.#log('INFO', message);
  }

  warn(message: string): void {
    this.#log('WARNING', message);
  }

  error(message: string): void {
    this.#log('ERROR', message);
  }

  #log(level: LogLevel, message: string): void {
    if (LOG_LEVELS.indexOf(level) < this.#minimum) {
      return;
    }
    this.#write(`${level} ${message}\n`);
  }
}
