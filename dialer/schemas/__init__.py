"""Request and response bodies, and the Decision serialiser."""
