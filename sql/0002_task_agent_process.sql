-- Which agent process a running task started, so that a dispatcher taking over an expired lease can
-- kill the agent the dead dispatcher left behind (it would otherwise keep editing the worktree the
-- next attempt runs in). The pid alone is not enough: pids are reused, so the process's start time
-- (clock ticks since boot, /proc/<pid>/stat field 22) and the boot it belongs to are kept with it,
-- and only a dispatcher on the same host may act on them.
ALTER TABLE tasks
  ADD COLUMN agent_pid INTEGER,
  ADD COLUMN agent_pid_started BIGINT,
  ADD COLUMN agent_host TEXT,
  ADD COLUMN agent_boot_id TEXT;
