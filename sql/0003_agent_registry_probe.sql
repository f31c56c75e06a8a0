-- The ACP handshake of probe_agents tells "installed but needs a login or key" apart from "no ACP",
-- and what the agent offers (auth methods, MCP transports, session loading).
ALTER TABLE available_agents ADD COLUMN needs_auth BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE available_agents ADD COLUMN acp_info JSONB;
