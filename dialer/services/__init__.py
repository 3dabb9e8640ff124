"""Use-cases. Each function takes a session, does its work through repositories, commits."""
