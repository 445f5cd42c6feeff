"""Trello's REST resources, one module each: members and tokens, webhooks, workspaces, boards."""
