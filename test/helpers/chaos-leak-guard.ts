/**
 * Leak guard (a vitest setup file, so it wraps every test file): a test file that leaves any of
 * these behind fails, with a message naming each thing and, where known, the line that made it:
 *  - a process (chaos-leak-processes.ts), agents' whole process groups included;
 *  - an open socket (a PostgreSQL pool or client, an HTTP client), a listening server or a
 *    connection it accepted, an armed interval that keeps the event loop alive
 *    (chaos-leak-handles.ts);
 *  - a PGlite database still open, a PostgreSQL test database never dropped
 *    (chaos-leak-databases.ts);
 *  - a `boocoder-*` temp folder still on disk, with the git worktrees registered in it
 *    (chaos-leak-temp-dirs.ts).
 * The check runs after the file's last hook (a setup file's afterAll runs last) and gives things a
 * few seconds to finish closing. Whatever is left is then released (killed, closed, dropped,
 * removed), so one leaking file does not spill into the next.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';
import { formatLeaks, type Leak, releaseAll } from './chaos-leak-common.js';
import { findLeftoverPgDatabases, findOpenPglite, testDatabasePrefix } from './chaos-leak-databases.js';
import { trackHandles } from './chaos-leak-handles.js';
import { trackProcesses } from './chaos-leak-processes.js';
import { trackTempDirs } from './chaos-leak-temp-dirs.js';

/** How long things get to finish closing after the file's cleanup (init reaps orphans lazily). */
const SETTLE_MS = 5000;
/** As in test/helpers/databases.ts, which cannot be imported here: it connects on load. */
const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const POSTGRES_PORT = Number(new URL(ADMIN_DATABASE_URL).port || 5432);

// Started when the setup file loads, before the test file's own imports: a server or interval
// made at a test module's top level is the file's too.
const processes = trackProcesses();
const handles = trackHandles({ postgresPort: POSTGRES_PORT });
const tempDirs = trackTempDirs();

function findLeaks(): Leak[] {
  return [...processes.find(), ...handles.find(), ...findOpenPglite(), ...tempDirs.find()];
}

beforeAll(() => {
  processes.takeBaseline();
});

afterAll(async () => {
  const deadline = Date.now() + SETTLE_MS;
  let leaks = findLeaks();
  while (leaks.length > 0 && Date.now() < deadline) {
    await delay(50);
    leaks = findLeaks();
  }
  await releaseAll(leaks);
  // Asked only by files that talked to PostgreSQL, once their connections are gone.
  if (handles.contacted(POSTGRES_PORT)) {
    const databases = await findLeftoverPgDatabases(ADMIN_DATABASE_URL, testDatabasePrefix());
    await releaseAll(databases);
    leaks = [...leaks, ...databases];
  }
  processes.reset();
  handles.reset();
  tempDirs.reset();
  if (leaks.length > 0) throw new Error(formatLeaks(leaks));
});
