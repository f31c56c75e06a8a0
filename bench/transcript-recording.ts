/**
 * What recording a transcript costs per agent event (docs/monitoring.md quotes it), on the embedded database and
 * on PostgreSQL (BENCH_DATABASE_URL, an admin URL, as bench/run.ts): a simulated busy turn of 20,000 events
 * (message chunks of 20 characters and tool calls with two updates each) fed to a recorder as
 * fast as the loop can, then closed. Reports the agent-side cost (time inside onEvent, which is
 * what the agent's I/O loop pays) and the writes (statements, rows, total time).
 *
 *   npx tsx bench/transcript-recording.ts
 */
import type { Db } from '../src/db/db.js';
import { createPgDb } from '../src/db/pg.js';
import { silentLogger } from '../src/log.js';
import { TranscriptRecorder } from '../src/transcripts/transcript-recorder.js';
import { createBenchDatabase, openBenchEmbedded, queueManyTasks, seedSession } from './bench-db.js';

const EVENTS = 20_000;

async function measure(name: string, db: Db): Promise<void> {
  const { projectId } = await seedSession(db, '/tmp/bench-transcript');
  await queueManyTasks(db, projectId, 1);
  const { rows } = await db.query<{ id: string }>('SELECT id FROM tasks ORDER BY seq DESC LIMIT 1');
  const taskId = rows[0]?.id as string;
  let statements = 0;
  const counting: Db = {
    ...db,
    kind: db.kind,
    query: (sql, params, options) => {
      statements += 1;
      return db.query(sql, params, options);
    },
    transaction: (fn) => db.transaction(fn),
    listen: (c, f) => db.listen(c, f),
    close: () => db.close(),
  };
  const recorder = await TranscriptRecorder.start({
    db: counting,
    taskId,
    cwd: '/tmp/bench-transcript',
    logger: silentLogger,
  });
  let inside = 0n;
  const started = process.hrtime.bigint();
  for (let i = 0; i < EVENTS; i++) {
    const event =
      i % 10 < 7
        ? ({ kind: 'message', text: 'twenty characters ok' } as const)
        : ({
            kind: 'tool',
            id: `call-${Math.floor(i / 10)}`,
            toolKind: 'execute',
            command: 'npm test',
            status: i % 10 === 9 ? 'completed' : 'in_progress',
          } as const);
    const t0 = process.hrtime.bigint();
    recorder.onEvent(event);
    inside += process.hrtime.bigint() - t0;
    // Agents' events arrive over I/O: yield now and then so flush timers and writes can run.
    if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await recorder.close();
  const totalMs = Number(process.hrtime.bigint() - started) / 1e6;
  const stored = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM task_events WHERE task_id = $1',
    [taskId],
  );
  process.stdout.write(
    `${name.padEnd(10)} ${EVENTS} events: ${(Number(inside) / EVENTS / 1000).toFixed(2)} µs each in onEvent; ` +
      `${statements - 1} write statements, ${stored.rows[0]?.n} rows kept (bounded), ${totalMs.toFixed(0)} ms in all\n`,
  );
}

const embedded = await openBenchEmbedded();
try {
  await measure('embedded', embedded);
} finally {
  await embedded.close();
}
const bench = await createBenchDatabase(
  process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
  'transcript',
);
const db = createPgDb({ connectionString: bench.url, logger: silentLogger });
try {
  await measure('postgresql', db);
} finally {
  await db.close();
  await bench.drop();
}
