"""Vigie: live picture of fire & rescue resources (CLI, settings, simulator, local stack, board)."""
