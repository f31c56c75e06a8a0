/**
 * Says loudly, once per run, whether the PostgreSQL half of the suite runs. In CI (or with
 * BOOCODER_REQUIRE_PG=1) an unreachable PostgreSQL fails the run here, before any test.
 */
import pg from 'pg';

export default async function globalSetup(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const required = Boolean(process.env.CI) || process.env.BOOCODER_REQUIRE_PG === '1';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.stderr.write(
      'boocoder tests: PostgreSQL reachable; integration suites run on PGlite AND PostgreSQL\n',
    );
  } catch (err) {
    const why = (err as { code?: string }).code ?? (err as Error).message;
    if (required)
      throw new Error(`PostgreSQL is required here (CI or BOOCODER_REQUIRE_PG=1) but unreachable (${why})`);
    process.stderr.write(
      `\n${'!'.repeat(78)}\n!! PostgreSQL half SKIPPED: no PostgreSQL at TEST_DATABASE_URL or 127.0.0.1:5432 (${why}).\n` +
        `!! Only the PGlite half of the integration suites ran. CI requires PostgreSQL.\n${'!'.repeat(78)}\n\n`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}
