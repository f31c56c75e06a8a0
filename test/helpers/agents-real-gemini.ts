/**
 * The real Gemini CLI (npm @google/gemini-cli, a devDependency) wired to the scripted model server
 * (its Gemini API wire format), and a /proc scan that finds agent processes still running in a
 * directory tree.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** node_modules/.bin/gemini of this checkout, as an absolute path (no PATH lookup in tests). */
export const GEMINI_BIN = resolve(fileURLToPath(new URL('../../node_modules/.bin/gemini', import.meta.url)));

/**
 * The agent env for tests: any API key (the scripted server ignores it) and the scripted server as
 * the Gemini API. Usage statistics and self-update are off through the settings.json boocoder
 * writes into the agent's isolated home (src/agents/gemini-settings.ts), which is what keeps the
 * CLI off the network: the tests check that nothing but the scripted server was asked.
 */
export function geminiEnv(geminiBaseUrl: string): Record<string, string> {
  return {
    GEMINI_API_KEY: 'not-a-real-key',
    GOOGLE_GEMINI_BASE_URL: geminiBaseUrl,
  };
}

/** The config-file entry (config.agents.gemini) for the real Gemini CLI over ACP. */
export function geminiAgentConfig(geminiBaseUrl: string): Record<string, unknown> {
  return { command: GEMINI_BIN, args: ['--acp'], env: geminiEnv(geminiBaseUrl) };
}

/**
 * Pids of live processes whose working directory is `dir` or below it: an agent (or a tool it ran)
 * that outlived its task. Linux /proc; processes we may not inspect are skipped.
 */
export function processesWorkingIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}
