"""Reconciling: pure plans (`plan`, `board_plan`, `workspace_plan`) and the `runner` that applies them
to a board or a workspace (`board`, `workspace`)."""
