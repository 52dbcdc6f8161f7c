"""The base every component runs on: settings, lifecycle, bus connections, health and metrics."""
