"""Strategies: the `Strategy` interface, the built-in SMA crossover, and the `StrategyEngine`
component that feeds bars to a strategy and asks the risk manager about every signal."""
