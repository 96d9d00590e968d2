"""The landing: bringing a verified change onto the target by compare-and-swap, the bookkeeping that goes with it, checkouts, notes."""
