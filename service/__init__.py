"""The service layer: wires the pure domain to the event store (the write API of the ledger)."""
