/** Shapes tool results: structuredContent plus a JSON text copy (Claude Code shows the model only text). */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, Root } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { isBoocoderError, toPublicError } from '../errors.js';
import type { Logger } from '../log.js';

export function toolResult(structured: Record<string, unknown>): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(structured, null, 2) }],
    structuredContent: structured,
  };
}

/** A domain error as an isError result; unknown errors are logged here and shown only as E_INTERNAL. */
export function toolError(err: unknown, logger: Logger): CallToolResult {
  if (!isBoocoderError(err)) logger.error('tool failed', { err });
  const e = toPublicError(err);
  return { content: [{ type: 'text', text: `${e.code}: ${e.message}` }], isError: true };
}

/** Runs a tool body, turning any thrown error into a clean isError result. */
export async function runTool(logger: Logger, body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (err) {
    return toolError(err, logger);
  }
}

export const uuid = () => z.uuid();
export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
export const isoSchema = z.string().nullable();
/** Client-supplied free-text limits (bytes are bounded again by the transport's body limit). */
export const MAX_INPUT_CHARS = 256 * 1024;
export const AGENT_NAME = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'agent names are lowercase letters, digits, - and _ (e.g. opencode)');

/**
 * The client's roots (its open folders), asked only when it offers them: new_task and new_arena
 * take the project from them when the call names none.
 */
export function clientRoots(server: McpServer): () => Promise<Root[]> {
  return async () => {
    if (!server.server.getClientCapabilities()?.roots) return [];
    return (await server.server.listRoots(undefined, { timeout: 5000 })).roots;
  };
}
