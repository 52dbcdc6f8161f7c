"""TradingSystem's trading runtime: one package per component, meeting only on the broker."""
