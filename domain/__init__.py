"""The domain: aggregates, events, value objects and rules. No I/O, no framework but eventsourcing."""
