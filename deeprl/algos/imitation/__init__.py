"""Imitation learning: behaviour cloning and DAgger (CS285 lecture 2)."""
