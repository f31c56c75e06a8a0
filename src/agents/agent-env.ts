/** The environment an agent process starts with. */
import type { AgentLaunchSpec } from './launch-specs.js';

export interface AgentEnvInput {
  spec: AgentLaunchSpec;
  /** BOOCODER_HOME: where per-install agent state may live. */
  home: string;
  /** The environment boocoder itself was started with. */
  childEnv: Readonly<Record<string, string>>;
}

/** The server's environment with the spec's own variables on top. */
export function buildAgentEnv(input: AgentEnvInput): Record<string, string> {
  return { ...input.childEnv, ...input.spec.env };
}
