import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The root logger. Untrusted MQTT values are always nested under `mqtt` so they cannot collide
 * with our own fields, and passwords, tokens and Authorization headers are redacted wherever
 * they appear (the admin token is also an AdminToken, whose JSON is `[redacted]`).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['mqtt.password', '*.password', 'token', '*.token', 'authorization', '*.authorization', '*.headers.authorization'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
