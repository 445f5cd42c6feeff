"""Workflows built on the clients and the reconciles: offboarding, pushing API changes, Atlassian
accounts, adopting a workspace, webhook upkeep."""
