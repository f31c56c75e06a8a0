/**
 * Moves an install from before boocoder had its own schema: its tables, views, sequences, types
 * and functions were created in `public`, recognised by `public.boocoder_migrations`. They move
 * with ALTER ... SET SCHEMA, which keeps every row, index, constraint, trigger and identity
 * sequence (those belong to their table and move with it); nothing is copied.
 *
 * Which objects are boocoder's is read from the migrations that database recorded as applied:
 * the names they CREATE. A shared database's other objects in `public` stay where they are.
 */
import type { Queryable } from './db.js';
import type { Migration } from './migrate.js';

const CREATE_RE =
  /\bCREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|TYPE|FUNCTION|PROCEDURE)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?([a-z_][a-z0-9_]*)/gi;

export interface CreatedObject {
  kind: string;
  name: string;
}

/** The objects a migration's SQL creates, by kind and name. */
export function createdObjects(sql: string): CreatedObject[] {
  const found: CreatedObject[] = [];
  for (const match of sql.matchAll(CREATE_RE)) {
    found.push({
      kind: (match[1] ?? '').toUpperCase().replace(/\s+/g, ' '),
      name: (match[2] ?? '').toLowerCase(),
    });
  }
  return found;
}

/** Runs inside the migration transaction, under the migration lock. True when an install was moved. */
export async function moveLegacyInstall(
  tx: Queryable,
  schema: string,
  migrations: Migration[],
): Promise<boolean> {
  if (schema === 'public') return false;
  const { rows } = await tx.query<{ legacy: boolean; moved: boolean }>(
    `SELECT to_regclass('public.boocoder_migrations') IS NOT NULL AS legacy,
            to_regclass(format('%I.boocoder_migrations', $1::text)) IS NOT NULL AS moved`,
    [schema],
  );
  if (!rows[0]?.legacy || rows[0].moved) return false;
  const applied = await tx.query<{ version: number }>('SELECT version FROM public.boocoder_migrations');
  const versions = new Set(applied.rows.map((r) => r.version));
  const objects = migrations.filter((m) => versions.has(m.version)).flatMap((m) => createdObjects(m.sql));
  objects.push({ kind: 'TABLE', name: 'boocoder_migrations' });
  const done = new Set<string>();
  for (const { kind, name } of objects) {
    if (done.has(`${kind} ${name}`)) continue;
    done.add(`${kind} ${name}`);
    for (const target of await existingInPublic(tx, kind, name)) {
      // target and schema are identifiers from pg's own quoting (regclass/regprocedure/regtype
      // output) and the validated schema name: nothing from outside reaches this DDL.
      await tx.query(`ALTER ${kind} ${target} SET SCHEMA ${schema}`);
    }
  }
  return true;
}

/** The object(s) of that kind and name still in public, as pg quotes them (functions with signature). */
async function existingInPublic(tx: Queryable, kind: string, name: string): Promise<string[]> {
  if (kind === 'FUNCTION' || kind === 'PROCEDURE') {
    const { rows } = await tx.query<{ target: string }>(
      `SELECT p.oid::regprocedure::text AS target FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace AND p.proname = $1`,
      [name],
    );
    return rows.map((r) => r.target);
  }
  if (kind === 'TYPE') {
    const { rows } = await tx.query<{ target: string }>(
      `SELECT t.oid::regtype::text AS target FROM pg_type t
       WHERE t.typnamespace = 'public'::regnamespace AND t.typname = $1 AND t.typrelid = 0`,
      [name],
    );
    return rows.map((r) => r.target);
  }
  const { rows } = await tx.query<{ target: string | null }>(
    `SELECT to_regclass(format('public.%I', $1::text))::text AS target`,
    [name],
  );
  const target = rows[0]?.target;
  // An identity or serial sequence moved with its table already; regclass text is then unqualified.
  return target ? [target.startsWith('public.') ? target : `public.${target}`] : [];
}
