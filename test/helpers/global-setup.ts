/**
 * Says loudly, once per run, whether the PostgreSQL half of the suite runs. In CI (or with
 * BOOCODER_REQUIRE_PG=1) an unreachable PostgreSQL fails the run here, before any test.
 *
 * Starts the embedded PostgreSQL the other half of describeEachDatabase runs on: one cluster for
 * the whole run (each test file gets databases of its own in it, as on the system PostgreSQL),
 * its admin URL handed to the workers in BOOCODER_TEST_EMBEDDED_URL, stopped at the end.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { silentLogger } from '../../src/log.js';

async function checkSystemPostgres(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const required = Boolean(process.env.CI) || process.env.BOOCODER_REQUIRE_PG === '1';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.stderr.write(
      'boocoder tests: PostgreSQL reachable; integration suites run on the embedded PostgreSQL AND PostgreSQL\n',
    );
  } catch (err) {
    const why = (err as { code?: string }).code ?? (err as Error).message;
    if (required)
      throw new Error(`PostgreSQL is required here (CI or BOOCODER_REQUIRE_PG=1) but unreachable (${why})`);
    process.stderr.write(
      `\n${'!'.repeat(78)}\n!! PostgreSQL half SKIPPED: no PostgreSQL at TEST_DATABASE_URL or 127.0.0.1:5432 (${why}).\n` +
        `!! Only the embedded half of the integration suites ran. CI requires PostgreSQL.\n${'!'.repeat(78)}\n\n`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  await checkSystemPostgres();
  // Its own name prefix: the leak guard's temp-folder check is for folders a test file leaves.
  const root = mkdtempSync(join(tmpdir(), 'vitest-embedded-pg-'));
  chmodSync(root, 0o755); // as root, postgres runs as `nobody`, who must reach the cluster folder
  const embedded = await startEmbeddedPostgres({
    home: join(root, 'home'),
    pgDir: join(root, 'pg'),
    logger: silentLogger,
    maxConnections: 300,
  });
  process.env.BOOCODER_TEST_EMBEDDED_URL = embedded.connectionString;
  return async () => {
    await embedded.stop();
    rmSync(root, { recursive: true, force: true });
  };
}
