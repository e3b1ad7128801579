import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, Logger } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type AnyLogFn = (...args: unknown[]) => void;

/**
 * A request's logger, made on first use. Fastify gives every request a child logger carrying
 * its id, and pino serialises a child's bindings when it is made, through the redaction of
 * customer emails (a wildcard path, so it runs on every binding). Most requests never log at
 * the usual levels: in a burst, making those children was about 2% of the API's CPU. Methods at a
 * level the process does not log return at once; the first one that does log makes the real
 * child, so every line still carries `reqId`.
 */
class LazyRequestLogger implements FastifyBaseLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
  ) {}

  private get logger(): Logger {
    return (this.made ??= this.parent.child(this.bindings));
  }

  get level(): LevelWithSilentOrString {
    return this.made?.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.logger.level = level;
  }

  /** As pino's: whether a line at `level` would be written (the access log asks before building one). */
  isLevelEnabled(level: LevelWithSilentOrString): boolean {
    // Until the child exists its level is the parent's.
    return (this.made ?? this.parent).isLevelEnabled(level);
  }

  private write(level: Level, args: unknown[]): void {
    // Until the child exists its level is the parent's.
    if (!(this.made ?? this.parent).isLevelEnabled(level)) return;
    const logger = this.logger;
    (logger[level] as AnyLogFn).apply(logger, args);
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}

/**
 * Fastify's `childLoggerFactory`. A route with its own log level or serializers (Fastify passes
 * them in `options`, otherwise empty) gets a real child at once: the lazy one reads the level
 * from the parent and has no serializers of its own.
 */
export function requestLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const parent = logger as Logger;
  if (Object.keys(options).length > 0) return parent.child(bindings, options);
  return new LazyRequestLogger(parent, bindings);
}
