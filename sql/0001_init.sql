-- boocoder schema, version 1: the original system's final schema (seed/schema.sql), written
-- directly rather than replayed through its history, plus the tables it borrowed from its host
-- application (projects, sessions, chats) and what a real queue needs (seq, attempts, leases).
-- Every seed table, column, state and named CHECK constraint is kept under its seed name.

CREATE TABLE projects (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  root_path TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT projects_root_path_key UNIQUE (root_path)
);

CREATE TABLE sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  title TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX sessions_project_idx ON sessions(project_id);

CREATE TABLE chats (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  title TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX chats_session_idx ON chats(session_id);

CREATE TABLE tasks (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  parent_task_id UUID REFERENCES tasks(id),
  state TEXT NOT NULL DEFAULT 'pending',
  input TEXT NOT NULL,
  output_summary TEXT,
  agent TEXT,
  model TEXT,
  execution_path TEXT,
  worktree_path TEXT,
  cost_tokens INTEGER,
  started_at TIMESTAMPTZ,
  ended_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  session_id UUID REFERENCES sessions(id),
  arena_id UUID,
  mode_id TEXT,
  thinking_option_id TEXT,
  feature_values JSONB,
  chat_id UUID REFERENCES chats(id) ON DELETE SET NULL,
  -- Queue bookkeeping. seq gives FIFO order: PGlite's clock has 1 ms resolution, so created_at ties.
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL DEFAULT 3,
  lease_owner TEXT,
  lease_expires_at TIMESTAMPTZ,
  last_error TEXT,
  error_code TEXT,
  cancel_requested_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT tasks_state_chk CHECK (state IN ('pending', 'running', 'completed', 'failed', 'blocked', 'cancelled')),
  CONSTRAINT tasks_execution_path_chk CHECK (execution_path IS NULL OR execution_path IN ('native', 'acp', 'pty', 'qwen')),
  CONSTRAINT tasks_attempts_chk CHECK (attempts >= 0 AND max_attempts >= 1),
  CONSTRAINT tasks_lease_chk CHECK (state <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE UNIQUE INDEX tasks_seq_uidx ON tasks(seq);
CREATE INDEX tasks_pending_seq_idx ON tasks(seq) WHERE state = 'pending';
CREATE INDEX tasks_running_lease_idx ON tasks(lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_project_state_idx ON tasks(project_id, state);
CREATE INDEX tasks_session_idx ON tasks(session_id, seq);
-- All agents of a session share one worktree, so a session runs one task at a time: that is what
-- lets each task's changes be attributed to it alone. Two dispatchers racing cannot break this.
CREATE UNIQUE INDEX tasks_one_running_per_session_uidx ON tasks(session_id) WHERE state = 'running';

CREATE TABLE worktrees (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID REFERENCES sessions(id) ON DELETE SET NULL,
  project_id UUID,
  path TEXT NOT NULL,
  branch TEXT,
  base_commit TEXT,
  slug TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  head_commit TEXT,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX worktrees_active_path_uidx ON worktrees(path) WHERE status = 'active';
CREATE UNIQUE INDEX worktrees_active_session_uidx ON worktrees(session_id) WHERE status = 'active';

CREATE TABLE pending_changes (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id UUID NOT NULL,
  task_id UUID REFERENCES tasks(id) ON DELETE CASCADE,
  file_path TEXT NOT NULL,
  operation TEXT NOT NULL,
  diff TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  agent TEXT,
  -- What apply/revert need to be exact: the blob before and after (in the project's object store,
  -- kept alive by the worktree branch's commits), and the file modes.
  base_oid TEXT,
  result_oid TEXT,
  base_mode TEXT,
  result_mode TEXT,
  diff_bytes INTEGER NOT NULL DEFAULT 0,
  worktree_id UUID REFERENCES worktrees(id) ON DELETE SET NULL,
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  applied_at TIMESTAMPTZ,
  reverted_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT pending_changes_operation_chk CHECK (operation IN ('create', 'edit', 'delete')),
  CONSTRAINT pending_changes_status_chk CHECK (status IN ('pending', 'applied', 'rejected', 'reverted'))
);
CREATE UNIQUE INDEX pending_changes_seq_uidx ON pending_changes(seq);
CREATE INDEX pending_changes_session_idx ON pending_changes(session_id, seq);
CREATE INDEX pending_changes_task_idx ON pending_changes(task_id, seq);
CREATE INDEX pending_changes_status_idx ON pending_changes(status, seq);

CREATE TABLE available_agents (
  name TEXT PRIMARY KEY,
  install_path TEXT,
  version TEXT,
  supports_acp BOOLEAN NOT NULL DEFAULT false,
  supports_mcp_client BOOLEAN NOT NULL DEFAULT false,
  last_probed_at TIMESTAMPTZ,
  models JSONB DEFAULT '[]'::jsonb,
  label TEXT,
  transport TEXT DEFAULT 'pty',
  commands JSONB DEFAULT '[]'::jsonb,
  found_via TEXT,
  probe_error TEXT,
  binary_fingerprint TEXT
);

CREATE TABLE agent_sessions (
  session_id UUID REFERENCES sessions(id) ON DELETE SET NULL,
  agent TEXT NOT NULL,
  backend TEXT NOT NULL,
  agent_session_id TEXT,
  server_port INTEGER,
  status TEXT NOT NULL DEFAULT 'idle',
  last_active_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  config_hash TEXT,
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cost DOUBLE PRECISION NOT NULL DEFAULT 0,
  chat_id UUID NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
  worktree_id UUID REFERENCES worktrees(id) ON DELETE SET NULL,
  CONSTRAINT agent_sessions_pkey PRIMARY KEY (chat_id, agent),
  CONSTRAINT agent_sessions_backend_chk CHECK (backend IN ('opencode_server', 'acp_warm')),
  CONSTRAINT agent_sessions_status_chk CHECK (status IN ('idle', 'active', 'crashed', 'closed'))
);
CREATE INDEX agent_sessions_session_idx ON agent_sessions(session_id);

-- Human inbox: tasks needing attention.
CREATE VIEW human_inbox AS
SELECT * FROM tasks WHERE state IN ('blocked', 'failed');

-- Every tasks INSERT, from any code path, wakes the dispatchers. Postgres delivers the
-- notification at COMMIT, so a listener always finds the committed row. It is a hint only:
-- dispatchers also poll.
CREATE FUNCTION notify_tasks_new() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('tasks_new', '');
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_notify_new
AFTER INSERT ON tasks
FOR EACH ROW
EXECUTE FUNCTION notify_tasks_new();
