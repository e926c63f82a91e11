"""Clients of the HTTP APIs gameday drives: JSON over HTTP with the admin token,
Toxiproxy (the lab's fault proxy or a real one), Prometheus."""
