/**
 * The check of an arena contender: when its agent's turn completed, the project's check command
 * runs in its worktree (after the capture, so nothing the check writes becomes a change) and its
 * result is recorded with the task's, for get_arena's ranking.
 */
import type { Config } from '../config.js';
import type { NewTaskCheck } from '../db/task-checks.js';
import { isBoocoderError } from '../errors.js';
import { type ProjectSettings, resolveProjectSettings } from '../projects/settings.js';
import { REPO_SETTINGS_FILE } from '../projects/trust.js';
import { runProjectCommand } from './project-command.js';

export async function runContenderCheck(i: {
  taskId: string;
  config: Config;
  rootPath: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  signal: AbortSignal;
}): Promise<NewTaskCheck | undefined> {
  let settings: ProjectSettings;
  try {
    // Read when the check runs: a .boocoder.json changed since the arena began is judged anew.
    settings = await resolveProjectSettings(i.config, i.rootPath);
  } catch (err) {
    // The contender's work is recorded whatever happens to its check.
    const why = isBoocoderError(err) ? err.message : 'the project settings could not be read';
    return { taskId: i.taskId, outcome: 'error', exitCode: null, durationMs: 0, outputTail: why };
  }
  const check = settings.check;
  if (!check) return undefined;
  if (!check.trusted) {
    // Recorded, not run: the ranking shows the contender as unchecked and says why.
    return {
      taskId: i.taskId,
      outcome: 'untrusted',
      exitCode: null,
      durationMs: 0,
      outputTail: `the check command in the repository's ${REPO_SETTINGS_FILE} is not trusted; run \`boocoder trust\``,
    };
  }
  const r = await runProjectCommand({
    command: check.command,
    cwd: i.cwd,
    env: i.env,
    timeoutMs: settings.checkTimeoutMs,
    signal: i.signal,
  });
  return { taskId: i.taskId, ...r };
}
