-- What an agent did during a task, as ordered events (src/agents/agent-events.ts defines them):
-- message and thought text, plan entries, tool calls, permission requests, usage, errors.
-- Written in batches by the task's transcript recorder, never one row per token chunk. Bounded per
-- task: past the bound, the middle is deleted and readers see the gap in `seq` (and say so).
CREATE TABLE task_events (
  task_id UUID NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  data JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT task_events_pkey PRIMARY KEY (task_id, seq),
  CONSTRAINT task_events_kind_chk CHECK (kind IN ('message', 'thought', 'plan', 'tool', 'permission', 'usage', 'error'))
);

-- One line saying what the task's agent is doing now ("running npm test", "editing src/a.ts"):
-- get_task's progress messages. Not indexed, so updating it keeps the row's updates HOT.
ALTER TABLE tasks ADD COLUMN now_doing TEXT;

