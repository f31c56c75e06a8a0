-- Tasks on the `pty` execution path run each turn as a one-shot headless process (`opencode run`,
-- `claude -p`, `codex exec`, `gemini`, `qwen` printing JSON lines). Their chat's backend session is
-- continued with the agent's own resume flag, so agent_sessions records it under its own backend:
-- a later task only resumes a session that this backend started.
ALTER TABLE agent_sessions DROP CONSTRAINT agent_sessions_backend_chk;
ALTER TABLE agent_sessions
  ADD CONSTRAINT agent_sessions_backend_chk CHECK (backend IN ('opencode_server', 'acp_warm', 'headless'));

-- Codex's `exec --json` reports the thread's running token totals, not the run's: the totals last
-- reported for the backend session are kept so that a resumed run records only its own usage.
ALTER TABLE agent_sessions
  ADD COLUMN backend_input_tokens BIGINT,
  ADD COLUMN backend_output_tokens BIGINT;
