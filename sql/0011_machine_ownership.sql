-- A project is a path on one machine's disk: record which machine (src/machine-id.ts). NULL means
-- "not adopted yet" (a project from before this migration): the first boocoder that finds the
-- repository at root_path adopts it. machine_name is the host name at adoption, for messages only.
ALTER TABLE projects ADD COLUMN machine_id TEXT;
ALTER TABLE projects ADD COLUMN machine_name TEXT;
ALTER TABLE worktrees ADD COLUMN machine_id TEXT;
