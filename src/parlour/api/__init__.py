"""Inbound HTTP adapter: Twilio's Video v1 REST API, one module per resource.

Handlers authenticate, parse the form (PascalCase in), call one service method, and
serialize (snake_case JSON out, Twilio paging). May import: `parlour.services`,
`parlour.domain`, `parlour.protocol`, Starlette. Must never import: `parlour.store` or
other adapters; it is wired by `parlour.app`.
"""
