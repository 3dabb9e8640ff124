"""Dispatch: campaigns planned into attempts, the outbox, workers, pacing, reconciliation."""
