"""A local stand-in for Trello's REST API and webhooks and Atlassian's SCIM API.

It stands for the outside world, so it imports nothing of Trellis: a bug shared with the client it tests
could otherwise hide itself.
"""
