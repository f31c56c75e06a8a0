-- The dispatcher's hot path.
--
-- A task inserted already claimed by the dispatcher of the process that queued it (claim at insert,
-- src/db/tasks.ts) is not for anyone else: waking every other dispatcher for it would only cost each
-- of them a claim statement that finds nothing. Only pending rows notify now. The WHEN clause is
-- checked before the trigger function is called, so a claimed insert runs no PL/pgSQL at all.
DROP TRIGGER tasks_notify_new ON tasks;

CREATE TRIGGER tasks_notify_new
AFTER INSERT ON tasks
FOR EACH ROW
WHEN (NEW.state = 'pending')
EXECUTE FUNCTION notify_tasks_new();

-- No query can use this index since 0004: the lease sweep looks for expired leases among running
-- AND blocked tasks (it finds them through tasks_one_active_per_session_uidx, which covers both),
-- and a partial index on running alone does not answer that. Yet every claim wrote an entry to it,
-- and every lease renewal too (lease_expires_at was indexed, so no renewal could be a HOT update).
DROP INDEX tasks_running_lease_idx;
