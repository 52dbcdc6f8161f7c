"""Alpaca market data: the stream v2 protocol (`protocol`) and its WebSocket client (`stream`)."""
