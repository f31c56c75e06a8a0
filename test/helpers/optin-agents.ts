/**
 * The opt-in agent suite (test/optin/): real agents that cannot be devDependencies because their
 * `engines` ask for Node 22 (Qwen Code, claude-agent-acp). They run only when asked:
 *
 *   BOOCODER_OPTIN_AGENTS=qwen,claude npm test      (or =all)
 *
 * and are then installed on first use, pinned, into `.tools/agent-<name>` and run on the Node 22
 * of test/helpers/node22.ts, while boocoder itself stays on Node 20. Not asked for, their suites
 * are registered as skipped with the reason in the name, so the run says what it left out.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from 'vitest';
import { type DatabaseTestContext, describeEachDatabase } from './databases.js';
import { ensureNode22 } from './node22.js';
import { ensureToolInstalled, run } from './tools-install.js';

interface OptinAgent {
  packageSpec: string;
  /** The agent's JavaScript entry point inside the install folder. */
  entry: string;
}

export const OPTIN_AGENTS = {
  qwen: {
    packageSpec: '@qwen-code/qwen-code@0.24.4',
    entry: join('node_modules', '@qwen-code', 'qwen-code', 'cli-entry.js'),
  },
  claude: {
    packageSpec: '@agentclientprotocol/claude-agent-acp@0.101.0',
    entry: join('node_modules', '@agentclientprotocol', 'claude-agent-acp', 'dist', 'index.js'),
  },
} as const satisfies Record<string, OptinAgent>;

export type OptinAgentName = keyof typeof OPTIN_AGENTS;

export function optinRequested(name: OptinAgentName): boolean {
  const wanted = (process.env.BOOCODER_OPTIN_AGENTS ?? '').split(',').map((s) => s.trim());
  return wanted.includes(name) || wanted.includes('all');
}

/** Node 22 and the agent's entry script, installing either on first use. */
export async function ensureOptinAgent(name: OptinAgentName): Promise<{ node: string; entry: string }> {
  const node = await ensureNode22();
  const agent: OptinAgent = OPTIN_AGENTS[name];
  const dir = await ensureToolInstalled({
    name: `agent-${name}`,
    packages: [agent.packageSpec],
    isReady: async (d) => {
      try {
        await access(join(d, agent.entry));
        // The version check runs the agent: an install that cannot start is not ready.
        return (
          name !== 'qwen' ||
          (await run(node, [join(d, agent.entry), '--version'], { timeout: 60_000 })).stdout.trim() !== ''
        );
      } catch {
        return false;
      }
    },
  });
  return { node, entry: join(dir, agent.entry) };
}

/** describeEachDatabase when the agent was asked for, else the same suite registered as skipped. */
export function describeOptinAgent(
  name: OptinAgentName,
  title: string,
  fn: (ctx: DatabaseTestContext) => void,
): void {
  if (optinRequested(name)) {
    describeEachDatabase(title, fn);
    return;
  }
  const ctx = {} as DatabaseTestContext;
  describe.skip(`${title} [opt-in: SKIPPED, set BOOCODER_OPTIN_AGENTS=${name} (or all) to run]`, () =>
    fn(ctx));
}
