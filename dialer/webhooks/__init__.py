"""Twilio webhooks: signature checks, parsing, routes."""
