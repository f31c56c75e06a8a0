/**
 * `npm run bench`: runs the benchmark suites of issue 5 one after another, prints one table
 * (metric, boocoder, peer, ratio, target, met?) on stdout and writes the results as JSON to
 * bench/results/. Progress goes to stderr.
 *
 *   npm run bench                          every suite (about 8 minutes on 2 cores)
 *   npm run bench -- --only pickup,mcp     a subset (names: see --list)
 *   npm run bench -- --skip memory         everything but some
 *   npm run bench -- --quick               fewer samples: checks the suite works, numbers are rough
 *   npm run bench -- --concurrency 8       dispatcher slots = graphile-worker concurrency (default 4)
 *   BENCH_DATABASE_URL=postgres://…        where bench databases are created (default: local postgres)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchContext, Suite } from './context.js';
import { describeMachine, loadNow } from './machine.js';
import { formatTable, type Metric, ratioOf, verdictOf } from './report.js';
import { progress } from './stats.js';
import { changeCaptureSuite } from './suite-capture.js';
import { firstContactSuite } from './suite-first-contact.js';
import { mcpSuite } from './suite-mcp.js';
import { memorySuite } from './suite-memory.js';
import { pickupSuite, throughputSuite } from './suite-queue.js';
import { soakSuite } from './suite-soak.js';
import { taskStartSuite } from './suite-task-start.js';

const SUITES: readonly Suite[] = [
  pickupSuite,
  throughputSuite,
  mcpSuite,
  taskStartSuite,
  changeCaptureSuite,
  memorySuite,
  firstContactSuite,
  soakSuite,
];

const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

function selectSuites(only: string | undefined, skip: string | undefined): Suite[] {
  const names = (list: string | undefined) =>
    (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const known = new Set(SUITES.map((s) => s.name));
  for (const n of [...names(only), ...names(skip)]) {
    if (!known.has(n)) throw new Error(`unknown suite "${n}"; known: ${[...known].join(', ')}`);
  }
  const wanted = names(only);
  const skipped = new Set(names(skip));
  return SUITES.filter((s) => (wanted.length === 0 || wanted.includes(s.name)) && !skipped.has(s.name));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      skip: { type: 'string' },
      quick: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '4' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.list) {
    const lines = SUITES.map((s) => `  ${s.name.padEnd(12)} ${s.description}`);
    process.stdout.write(
      `usage: npm run bench -- [--only a,b] [--skip a,b] [--quick] [--concurrency N]\n\nsuites:\n${lines.join('\n')}\n`,
    );
    return;
  }
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new Error('--concurrency must be a whole number from 1 to 64');
  const ctx: BenchContext = {
    adminUrl: process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    quick: values.quick,
    concurrency,
  };
  const suites = selectSuites(values.only, values.skip);
  const machine = await describeMachine(ctx.adminUrl);
  progress(
    `machine: ${machine.cpus} cpus, ${machine.memoryGb} GB, node ${machine.node}, PostgreSQL ${machine.postgres}, load ${machine.loadAtStart}`,
  );
  if (machine.loadAtStart > machine.cpus)
    progress(
      `WARNING: load ${machine.loadAtStart} on ${machine.cpus} cpus: other work will skew the numbers`,
    );
  const startedAt = new Date();
  const metrics: Metric[] = [];
  const failures: { suite: string; error: string }[] = [];
  for (const suite of suites) {
    const t0 = Date.now();
    try {
      metrics.push(...(await suite.run(ctx)));
      progress(`${suite.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      // One broken suite must not hide the others' numbers; the exit code still reports it.
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failures.push({ suite: suite.name, error });
      progress(`${suite.name}: FAILED: ${error}`);
    }
  }
  const durationS = (Date.now() - startedAt.getTime()) / 1000;
  const loadAtEnd = loadNow();
  process.stdout.write(`${formatTable(metrics)}\n`);
  for (const f of failures) process.stdout.write(`\nsuite ${f.suite} FAILED (see stderr)\n`);
  process.stdout.write(
    `\n${suites.length} suite(s) in ${durationS.toFixed(0)} s${ctx.quick ? ' (--quick)' : ''}; load average ${machine.loadAtStart} at start, ${loadAtEnd} at end, ${machine.cpus} cpus\n`,
  );

  await mkdir(RESULTS_DIR, { recursive: true });
  const json = {
    startedAt: startedAt.toISOString(),
    durationS,
    options: { quick: ctx.quick, concurrency: ctx.concurrency, suites: suites.map((s) => s.name) },
    machine: { ...machine, loadAtEnd },
    metrics: metrics.map((m) => ({ ...m, ratio: ratioOf(m), met: verdictOf(m) })),
    failures,
  };
  const text = `${JSON.stringify(json, null, 2)}\n`;
  const file = join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, text);
  await writeFile(join(RESULTS_DIR, 'latest.json'), text);
  progress(`results written to ${file}`);
  if (failures.length > 0) process.exitCode = 1;
}

main()
  // A stray socket or timer in a peer's library must not keep a finished run alive.
  .then(() => process.exit())
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
