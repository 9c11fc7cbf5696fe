"""Tooling for the engine rather than the agent: `agent bench` and grafting an MTP head (`agent mtp graft|eval`)."""
