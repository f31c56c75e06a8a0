-- The conversation of boocoder's own agent (`boocode`, execution path `native`) per chat: the
-- messages it sent its model and got back, in the wire format (`api`) that produced them, so a
-- follow-up task in the same chat continues it, also after boocoder restarted. A chat's
-- conversation goes with the chat.
CREATE TABLE native_conversations (
  chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
  agent TEXT NOT NULL,
  api TEXT NOT NULL CHECK (api IN ('openai', 'anthropic')),
  config_hash TEXT NOT NULL,
  messages JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (chat_id, agent)
);
