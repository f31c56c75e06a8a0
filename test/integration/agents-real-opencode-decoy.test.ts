/**
 * The REAL opencode on each execution path (acp, headless `opencode run`, the shared `opencode
 * serve`) with boocoder started from a decoy repository, as `npm start` in a checkout does: its cwd
 * and PWD the decoy, npm's variables naming it. The scripted model asks for a file by a relative
 * path, which opencode resolves against the directory it believes it works in: the file must be a
 * pending change of the worktree, and nothing may appear in the decoy (the defect of issue 10:
 * `opencode run` takes its directory from $PWD, and boocoder passed its own along).
 */
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { changesOf, opencodeAgentConfig, runTaskToEnd, useAgentBoocoder } from '../helpers/agent-e2e.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, tempRepos } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('the real opencode on every execution path, boocoder started from a decoy', (ctx) => {
  const startedIn = process.cwd();
  const decoyRepos = tempRepos();
  let decoy = '';
  let decoyBefore = new Map<string, string>();
  const e = useAgentBoocoder(ctx, async () => {
    decoy = await decoyRepos.repo({ 'README.md': '# the checkout boocoder was started from\n' });
    decoyBefore = await snapshot(decoy);
    process.chdir(decoy);
    return {
      models: { perUserTurn: true },
      config: (models) => ({ agents: { opencode: opencodeAgentConfig(models.baseUrl) } }),
      env: {
        PWD: decoy,
        INIT_CWD: decoy,
        npm_package_json: join(decoy, 'package.json'),
        npm_config_local_prefix: decoy,
        BOOCODER_TASK_TIMEOUT_MS: '180000',
      },
    };
  });
  afterAll(async () => {
    process.chdir(startedIn);
    await decoyRepos.cleanup();
  });

  it.each(['acp', 'headless', 'serve'])(
    '%s: the file is a pending change of the worktree; the decoy and the repository stay as they were',
    async (path) => {
      const repo = await e.repos.repo({ 'README.md': '# demo\n' });
      const repoBefore = await snapshot(repo);
      const content = `written by opencode over ${path}`;
      const { queued, done } = await runTaskToEnd(e.client, {
        project: repo,
        agent: 'opencode',
        execution_path: path,
        input: `Please create ${path}.txt with content ${content}`,
      });
      expect(done).toMatchObject({ state: 'completed', error: null });
      const changes = await changesOf(e.client, { task_id: queued.task_id });
      expect(changes.map((c) => [c.operation, c.file_path])).toEqual([['create', `${path}.txt`]]);
      expect(changes[0]?.diff).toContain(`+${content}`);
      expect(await snapshot(decoy)).toEqual(decoyBefore);
      expect(await snapshot(repo)).toEqual(repoBefore);
    },
    400_000,
  );
});
