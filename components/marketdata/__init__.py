"""Market data: feeds (synthetic random walk, CSV replay), bars built from trades, and the
`MarketData` component that publishes quotes, trades and bars on the broker."""
