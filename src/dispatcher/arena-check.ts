/**
 * The check of an arena contender: when its agent's turn completed, the project's check command
 * runs in its worktree (after the capture, so nothing the check writes becomes a change) and its
 * result is recorded with the task's, for get_arena's ranking.
 */
import type { NewTaskCheck } from '../db/task-checks.js';
import type { ProjectSettings } from '../services/project-settings.js';
import { REPO_SETTINGS_FILE } from '../services/trust.js';
import { runProjectCommand } from './project-command.js';

export async function runContenderCheck(i: {
  taskId: string;
  cwd: string;
  settings: ProjectSettings;
  env: Readonly<Record<string, string>>;
  signal: AbortSignal;
}): Promise<NewTaskCheck | undefined> {
  const check = i.settings.check;
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
    timeoutMs: i.settings.checkTimeoutMs,
    signal: i.signal,
  });
  return { taskId: i.taskId, ...r };
}
