"""Venues orders are sent to; each implements `venues.base.Venue`."""
