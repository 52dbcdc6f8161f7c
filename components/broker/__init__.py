"""The ZMQ broker: the one address every component connects to."""
