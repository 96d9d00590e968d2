"""`gitforge run`: the coordinator, its worker processes, and what they share (the batch
record, the spend ledger)."""
