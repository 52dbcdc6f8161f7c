"""The risk manager: signal checks against limits, positions and P&L, and its state log."""
