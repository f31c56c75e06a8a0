import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertChannelName, parseInt8 } from '../../src/db/adapter-common.js';
import { defaultMigrationsDir, loadMigrations } from '../../src/db/migrate.js';
import { isBoocoderError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-mig-')));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('loadMigrations', () => {
  it('orders files by version and checksums their bytes', () => {
    writeFileSync(join(dir, '0002_second.sql'), 'SELECT 2;');
    writeFileSync(join(dir, '0001_first.sql'), 'SELECT 1;');
    writeFileSync(join(dir, 'README.md'), 'not a migration');
    const migrations = loadMigrations(dir);
    expect(migrations.map((m) => [m.version, m.name, m.file])).toEqual([
      [1, 'first', '0001_first.sql'],
      [2, 'second', '0002_second.sql'],
    ]);
    expect(migrations[0]?.checksum).toBe(createHash('sha256').update('SELECT 1;').digest('hex'));
  });

  it('rejects a .sql file that is not named NNNN_name.sql', () => {
    writeFileSync(join(dir, '1-init.sql'), 'SELECT 1;');
    expect(() => loadMigrations(dir)).toThrow(/not named NNNN_name\.sql/);
  });

  it('rejects two files with the same version', () => {
    writeFileSync(join(dir, '0001_a.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '0001_b.sql'), 'SELECT 1;');
    expect(() => loadMigrations(dir)).toThrow(/two migration files have version 1/);
  });

  it('finds the package sql/ directory with 0001_init.sql', () => {
    expect(loadMigrations(defaultMigrationsDir())[0]?.file).toBe('0001_init.sql');
  });
});

describe('assertChannelName', () => {
  it.each(['tasks_new', 'a', '_x9'])('accepts %s', (name) => {
    expect(() => assertChannelName(name)).not.toThrow();
  });

  it.each(['', 'Tasks', 'a b', 'x"; DROP TABLE tasks; --', '9lives', 'a'.repeat(64)])(
    'rejects %j (it would be spliced into LISTEN)',
    (name) => {
      let caught: unknown;
      try {
        assertChannelName(name);
      } catch (err) {
        caught = err;
      }
      expect(isBoocoderError(caught, 'E_INVALID_INPUT')).toBe(true);
    },
  );
});

describe('parseInt8', () => {
  it('parses int8 text as a number', () => {
    expect(parseInt8('42')).toBe(42);
    expect(parseInt8('-9007199254740991')).toBe(-9007199254740991);
  });
});
