/**
 * The real codex-acp (npm @zed-industries/codex-acp, a devDependency) wired to the scripted model
 * server's OpenAI Responses wire, through its built-in OpenAI provider: OPENAI_API_KEY (any value)
 * plus `openai_base_url`, so boocoder's pre-session `authenticate` step is what lets session/new
 * through (src/agents/acp-authenticate.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * node_modules/.bin/codex-acp: the npm wrapper, which runs the native binary as its child and does
 * not forward signals. Tests use it on purpose: stopping a task must stop that grandchild too.
 */
export const CODEX_ACP_BIN = resolve(
  fileURLToPath(new URL('../../node_modules/.bin/codex-acp', import.meta.url)),
);

/**
 * A model slug Codex knows: it picks its tool set from the model's bundled metadata, and for this
 * one it offers `apply_patch` (an unknown slug gets only a shell). Both codex-acp 0.16 and the
 * codex CLI 0.171 (`codex exec`) know it. The scripted server ignores the name.
 */
export const CODEX_MODEL = 'gpt-5.5';

/**
 * `-c` overrides for codex-acp: the scripted server as the OpenAI API, a known model, and no
 * sandbox (codex's Linux sandbox needs bubblewrap, which CI machines lack; the worktree is the
 * boundary here).
 */
export function codexArgs(baseUrl: string): string[] {
  return [
    '-c',
    `openai_base_url=${JSON.stringify(baseUrl)}`,
    '-c',
    `model=${JSON.stringify(CODEX_MODEL)}`,
    '-c',
    'sandbox_mode="danger-full-access"',
  ];
}

/** The config-file entry (config.agents.codex) for the real codex-acp. */
export function codexAgentConfig(baseUrl: string): Record<string, unknown> {
  return { command: CODEX_ACP_BIN, args: codexArgs(baseUrl), env: { OPENAI_API_KEY: 'not-a-real-key' } };
}

/**
 * Pids of the live processes in process group `pgid` (Linux /proc: field 5 of `stat`, after the
 * parenthesised command name, which may itself hold spaces or parentheses).
 */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state (Z: a zombie, already dead), fields[2] the process group.
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return members;
}
