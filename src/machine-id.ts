/**
 * The stable id of the machine boocoder runs on: projects and worktrees record it, so a server
 * only works on repositories on its own disk when several machines share one database.
 *
 * From systemd's /etc/machine-id (or D-Bus's copy) where present: the same for every user and
 * every home on the machine, stable across reboots, unlike a host name that two machines may
 * share. It is hashed with a boocoder-specific prefix, as systemd asks of applications
 * (sd_id128_get_machine_app_specific): the raw id is meant to stay on the machine. Without it, an
 * id is generated once and kept in ~/.config/boocoder/machine-id (per user then, never per home).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface Machine {
  id: string;
  /** The host name: for messages that name a machine, never for identity. */
  name: string;
}

const SYSTEM_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];

function readId(path: string): string | undefined {
  try {
    const id = readFileSync(path, 'utf8').trim();
    return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** `override` (BOOCODER_MACHINE_ID: tests, cloned VM images) wins; `userHome` holds the fallback id. */
export function resolveMachine(override: string | undefined, userHome: string): Machine {
  const name = hostname();
  if (override) return { id: override, name };
  for (const file of SYSTEM_ID_FILES) {
    const id = readId(file);
    if (id) return { id: createHash('sha256').update(`boocoder:${id}`).digest('hex').slice(0, 32), name };
  }
  const file = join(userHome, '.config', 'boocoder', 'machine-id');
  const kept = readId(file);
  if (kept) return { id: kept, name };
  const id = randomBytes(16).toString('hex');
  mkdirSync(join(userHome, '.config', 'boocoder'), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return { id, name };
}
