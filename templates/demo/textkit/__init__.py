"""textkit: small text helpers (the gitforge demo project)."""
