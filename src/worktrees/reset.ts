/**
 * Puts a session worktree back at a recorded commit before a run: whatever an abandoned attempt
 * left (edits, new files, its own commits) is discarded, so a run's capture holds that run alone.
 * Ignored files (installed dependencies, build output) are kept: they are never captured anyway.
 */
import { BoocoderError } from '../errors.js';
import { assertOid, runGit } from './git.js';
import { worktreeGitOptions } from './repository.js';
import { SESSION_BRANCH_PREFIX } from './worktrees.js';

export async function resetWorktree(input: {
  repoPath: string;
  worktreePath: string;
  commit: string;
}): Promise<void> {
  const commit = assertOid(input.commit, 'the commit to reset to');
  const opts = await worktreeGitOptions(input.repoPath, input.worktreePath);
  // An agent may have switched branches; the session branch is whatever HEAD named when we made it,
  // so only a HEAD still on a session branch is moved with the reset.
  const head = await runGit(['symbolic-ref', '--quiet', 'HEAD'], { ...opts, okExitCodes: [1] });
  const ref = head.stdout.trim();
  if (head.exitCode !== 0 || !ref.startsWith(`refs/heads/${SESSION_BRANCH_PREFIX}`)) {
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      'the session worktree is no longer on its session branch (an agent switched branches); start a new session',
    );
  }
  // reset --hard checks files out: hooks and filter drivers are off (git.ts, worktreeGitOptions).
  await runGit(['reset', '--hard', '--quiet', '--no-recurse-submodules', commit], opts);
  // -ff also removes nested repositories an agent created; no -x: ignored files stay.
  await runGit(['clean', '-f', '-f', '-d', '--quiet'], opts);
}
