-- Permission requests an agent asked and the `ask` policy handed to a human. While one is pending the
-- task is `blocked`: its dispatcher keeps the lease and the agent's ACP request stays open until
-- answer_permission records a choice (or the task is cancelled, or its run ends: expired).
CREATE TABLE permission_requests (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  session_id UUID REFERENCES sessions(id) ON DELETE SET NULL,
  agent TEXT NOT NULL,
  tool_call_id TEXT,
  title TEXT,
  kind TEXT,
  -- The paths the tool call names, as the agent sent them: [{"path": "...", "line": 3}, ...].
  locations JSONB NOT NULL DEFAULT '[]'::jsonb,
  -- The choices the agent offered: [{"optionId": "...", "name": "...", "kind": "allow_once"}, ...].
  options JSONB NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  chosen_option_id TEXT,
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  answered_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT permission_requests_state_chk CHECK (state IN ('pending', 'answered', 'cancelled', 'expired')),
  CONSTRAINT permission_requests_answer_chk CHECK ((state = 'answered') = (chosen_option_id IS NOT NULL))
);
CREATE UNIQUE INDEX permission_requests_seq_uidx ON permission_requests(seq);
CREATE INDEX permission_requests_pending_idx ON permission_requests(seq) WHERE state = 'pending';
CREATE INDEX permission_requests_task_idx ON permission_requests(task_id, seq);
CREATE INDEX permission_requests_session_idx ON permission_requests(session_id, seq);

-- A blocked task still owns its session's worktree (its agent is alive and waiting in it), so the
-- one-task-per-session rule covers `blocked` as well as `running`.
CREATE UNIQUE INDEX tasks_one_active_per_session_uidx ON tasks(session_id) WHERE state IN ('running', 'blocked');
DROP INDEX tasks_one_running_per_session_uidx;
