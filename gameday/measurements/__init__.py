"""What probes compute from what they read (mostly pure): SLA server- and client-side,
breaker states and timings, reconciliation of orders against the broker's ledger."""
