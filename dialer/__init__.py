"""The collections-dialer service: API, planner, workers, webhooks and CLI."""
