-- One name per execution path, from new_task's input to tasks.execution_path to the config to
-- agent_sessions.backend (docs/architecture.md, "Execution paths"). The seed's names keep the seed's
-- meaning: `native` is boocoder's own agent, `acp` an ACP agent over stdio, `pty` a headless CLI
-- run, `qwen` Qwen Code's own path (its headless stream-json run).
--
-- opencode's shared `opencode serve` was stored as `native` until now; it gets its own value,
-- `opencode_server`, the name the seed already gives its sessions in agent_sessions.backend. Adding a
-- value to the CHECK keeps every seed row valid; the rows written so far are remapped.
ALTER TABLE tasks DROP CONSTRAINT tasks_execution_path_chk;
UPDATE tasks SET execution_path = 'opencode_server' WHERE execution_path = 'native';
UPDATE tasks SET execution_path = 'qwen' WHERE execution_path = 'pty' AND agent = 'qwen';
ALTER TABLE tasks
  ADD CONSTRAINT tasks_execution_path_chk
  CHECK (execution_path IS NULL OR execution_path IN ('native', 'acp', 'pty', 'qwen', 'opencode_server'));

-- A chat's session is named after the path that runs it, as the seed did for `opencode_server`. The
-- ACP path keeps the seed's `acp_warm`: its row is a warm session (a live agent process kept
-- between the chat's tasks, continued with session/load after it is gone), which is what the seed
-- called it. 0005's `headless` becomes the path's own name, `pty` (`qwen` for Qwen Code).
ALTER TABLE agent_sessions DROP CONSTRAINT agent_sessions_backend_chk;
UPDATE agent_sessions SET backend = CASE WHEN agent = 'qwen' THEN 'qwen' ELSE 'pty' END WHERE backend = 'headless';
ALTER TABLE agent_sessions
  ADD CONSTRAINT agent_sessions_backend_chk
  CHECK (backend IN ('opencode_server', 'acp_warm', 'pty', 'qwen', 'native'));
