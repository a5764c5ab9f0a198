"""The domain: aggregates, events, value objects and rules.

No I/O and no framework but eventsourcing's aggregate base.
"""
