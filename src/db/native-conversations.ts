/** native_conversations: the stored conversation of the native agent per (chat, agent). */
import type { Queryable } from './db.js';

export interface NativeConversation {
  api: 'openai' | 'anthropic';
  configHash: string;
  messages: unknown[];
}

export async function findNativeConversation(
  db: Queryable,
  chatId: string,
  agent: string,
): Promise<NativeConversation | null> {
  const { rows } = await db.query<{ api: NativeConversation['api']; config_hash: string; messages: unknown }>(
    'SELECT api, config_hash, messages FROM native_conversations WHERE chat_id = $1 AND agent = $2',
    [chatId, agent],
  );
  const row = rows[0];
  if (!row || !Array.isArray(row.messages)) return null;
  return { api: row.api, configHash: row.config_hash, messages: row.messages };
}

export async function saveNativeConversation(
  db: Queryable,
  chatId: string,
  agent: string,
  conversation: NativeConversation,
): Promise<void> {
  await db.query(
    `INSERT INTO native_conversations (chat_id, agent, api, config_hash, messages)
     VALUES ($1, $2, $3, $4, $5::jsonb)
     ON CONFLICT (chat_id, agent) DO UPDATE
       SET api = EXCLUDED.api, config_hash = EXCLUDED.config_hash, messages = EXCLUDED.messages,
           updated_at = clock_timestamp()`,
    [chatId, agent, conversation.api, conversation.configHash, JSON.stringify(conversation.messages)],
  );
}
