-- Arenas (best-of-N) and worktrees that are ready to work in.
--
-- An arena queues one input for several contenders, each a task in its own session whose worktree
-- starts at the commit pinned here (the repository's HEAD when the arena was created), so that
-- their diffs compare. The seed's tasks.arena_id now points at it. winner_task_id and decided_at
-- record the human's pick; decided_at with no winner means "none of them".
CREATE TABLE arenas (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  input TEXT NOT NULL,
  base_commit TEXT NOT NULL,
  winner_task_id UUID REFERENCES tasks(id) ON DELETE SET NULL,
  decided_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE UNIQUE INDEX arenas_seq_uidx ON arenas(seq);
CREATE INDEX arenas_project_idx ON arenas(project_id, seq);

ALTER TABLE tasks ADD CONSTRAINT tasks_arena_fk FOREIGN KEY (arena_id) REFERENCES arenas(id) ON DELETE SET NULL;
CREATE INDEX tasks_arena_idx ON tasks(arena_id) WHERE arena_id IS NOT NULL;

-- The project's check command run in a task's worktree when it ended (arena contenders): how it
-- went, for ranking. outcome: passed (exit 0), failed (other exit), timeout, untrusted (a
-- repository command the user has not trusted: not run), error (could not be started).
CREATE TABLE task_checks (
  task_id UUID PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
  outcome TEXT NOT NULL,
  exit_code INTEGER,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  output_tail TEXT NOT NULL DEFAULT '',
  created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT task_checks_outcome_chk CHECK (outcome IN ('passed', 'failed', 'timeout', 'untrusted', 'error'))
);

-- Each live worktree owns a block of TCP ports (PORT and PORT_RANGE_* in its agent's environment)
-- so that dev servers started in parallel worktrees do not collide: unique among active rows.
-- ready_at: the project's files were copied in and its setup command succeeded; until then the
-- next run of the session prepares the worktree again.
ALTER TABLE worktrees ADD COLUMN port_base INTEGER, ADD COLUMN ready_at TIMESTAMPTZ;
CREATE UNIQUE INDEX worktrees_active_port_uidx ON worktrees(port_base) WHERE status = 'active' AND port_base IS NOT NULL;
