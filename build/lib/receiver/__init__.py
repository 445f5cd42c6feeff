"""The HTTP edge: webhooks from Trello, the membership API, health and metrics.

It never calls Trello: whatever needs Trello becomes a job for the workers.
"""
