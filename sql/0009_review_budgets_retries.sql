-- Budgets, safe retries, review that talks back, and merges when the base moved (issue 14, items 4-7).

-- Safe retries: a client that timed out and sends new_task again with the same request_id gets the
-- task its first call created. The unique index makes two racing retries meet in the database: one
-- inserts, the other finds its row. An id older than the replay window is released (set to NULL)
-- before a new task takes it, so the index never has to know about time.
ALTER TABLE tasks
  ADD COLUMN request_id TEXT,
  -- Budgets: a task whose reported usage passes either limit is stopped (E_BUDGET_EXCEEDED).
  ADD COLUMN max_cost DOUBLE PRECISION,
  ADD COLUMN max_tokens BIGINT,
  -- What the task's agent reported, kept per task (cost_tokens, the seed's column, is their sum):
  -- get_usage sums these per agent, model and day.
  ADD COLUMN input_tokens BIGINT,
  ADD COLUMN output_tokens BIGINT,
  ADD COLUMN cost DOUBLE PRECISION,
  ADD COLUMN cost_currency TEXT NOT NULL DEFAULT 'USD',
  ADD CONSTRAINT tasks_budget_chk CHECK ((max_cost IS NULL OR max_cost >= 0) AND (max_tokens IS NULL OR max_tokens >= 0));
CREATE UNIQUE INDEX tasks_project_request_uidx ON tasks(project_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX tasks_project_created_idx ON tasks(project_id, created_at);

-- A chat's cumulative cost carries its currency too.
ALTER TABLE agent_sessions ADD COLUMN cost_currency TEXT NOT NULL DEFAULT 'USD';

ALTER TABLE pending_changes
  -- request_changes: the reviewer's comment, and the follow-up task queued with it.
  ADD COLUMN review_comment TEXT,
  ADD COLUMN follow_up_task_id UUID REFERENCES tasks(id) ON DELETE SET NULL,
  -- The rejected change a follow-up's change of the same file replaces (its base is that change's base).
  ADD COLUMN supersedes_id UUID REFERENCES pending_changes(id) ON DELETE SET NULL,
  -- What the file held just before the change was applied (NULL oid: it did not exist), and what
  -- apply wrote when it had to merge (NULL: the change's result as captured). Revert restores the
  -- first, and only while the file still holds what apply wrote.
  ADD COLUMN prior_oid TEXT,
  ADD COLUMN prior_mode TEXT,
  ADD COLUMN merged_oid TEXT;
CREATE INDEX pending_changes_supersedes_idx ON pending_changes(supersedes_id) WHERE supersedes_id IS NOT NULL;
