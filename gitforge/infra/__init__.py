"""Infrastructure: `.forge/` (the state layer, its only writer), leases, gates and the processes they start, the worktree pool, guards."""
