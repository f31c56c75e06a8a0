/**
 * JSON-lines logging to stderr. stdout belongs to the stdio MCP protocol: nothing else may write there.
 */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const rank: Record<LogLevel, number> = { debug: 10, info: 20, notice: 25, warning: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  setLevel(level: LogLevel): void;
}

type Sink = (line: string) => void;

const stderrSink: Sink = (line) => {
  process.stderr.write(`${line}\n`);
};

function serialise(value: unknown): unknown {
  if (value instanceof Error)
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  sink: Sink = stderrSink,
): Logger {
  const state = { level };
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < rank[state.level]) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) record[k] = serialise(v);
    sink(JSON.stringify(record));
  };
  const make = (extra: Record<string, unknown>): Logger => {
    const fieldsOf = (f?: Record<string, unknown>) => ({ ...extra, ...f });
    return {
      debug: (m, f) => emit('debug', m, fieldsOf(f)),
      info: (m, f) => emit('info', m, fieldsOf(f)),
      warn: (m, f) => emit('warning', m, fieldsOf(f)),
      error: (m, f) => emit('error', m, fieldsOf(f)),
      child: (f) => make({ ...extra, ...f }),
      setLevel: (l) => {
        state.level = l;
      },
    };
  };
  return make({});
}

/** A logger that drops everything: for tests and library callers that bring their own. */
export const silentLogger: Logger = createLogger('error', {}, () => {});
