"""gameday: chaos and resilience experiments for the broker-integration service.

The layers and where each piece lives: docs/architecture.md."""
