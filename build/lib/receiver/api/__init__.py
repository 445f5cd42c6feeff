"""The membership API of seeds 003 and 004: `/organizations/me/members`, `/organizations/me/invites` and
`/organizations/invites/accept`, under bearer-token auth."""
