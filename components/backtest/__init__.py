"""The event-driven backtest engine (the strategy and backtest issue fills it)."""
