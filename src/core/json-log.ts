// --log-format json: one JSON object per line, through pino (the Node
// ecosystem's structured logger), for serve's and the proxy's access logs and
// their messages. Text stays the default; the fields of an access object are
// those of the text line, named, plus the client's address and user agent.
import { pino, type Logger } from 'pino';
import { isoNow } from './iso-now.js';

/**
 * A logger writing each object, as one line, through `write` (the injected
 * stderr, or serve's batching LogBuffer). `base: null` leaves out pino's
 * pid and hostname (a log collector knows where a line came from); the time
 * is ISO 8601 as in the text lines, the level its name rather than pino's
 * number, so `jq 'select(.level == "warn")'` reads as it says.
 */
export function jsonLogger(write: (text: string) => void): Logger {
  return pino(
    {
      base: null,
      // pino's isoTime formats a Date per line, a third of a JSON line's
      // cost in serve; the same text, made once per second.
      timestamp: () => `,"time":"${isoNow()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write },
  );
}
