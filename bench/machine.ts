/** The machine and the versions a run measured, written into the JSON and docs/benchmarks.md. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresVersion } from './bench-db.js';

export const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The installed version of a dependency (read from disk: not every package exports package.json). */
export function packageVersion(name: string): string {
  const file = join(REPO_ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  postgres: string;
  git: string;
  packages: Record<string, string>;
  /** 1-minute load average when the run started: above `cpus`, other work competed with the bench. */
  loadAtStart: number;
}

/** The 1-minute load average, rounded. */
export function loadNow(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

export async function describeMachine(adminUrl: string): Promise<Machine> {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    postgres: await postgresVersion(adminUrl),
    git: execFileSync('git', ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^git version /, ''),
    packages: Object.fromEntries(
      [
        '@electric-sql/pglite',
        '@modelcontextprotocol/sdk',
        '@modelcontextprotocol/server-everything',
        'graphile-worker',
        'pg',
      ].map((n) => [n, packageVersion(n)]),
    ),
    loadAtStart: loadNow(),
  };
}
