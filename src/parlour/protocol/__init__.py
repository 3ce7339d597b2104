"""Pure wire contracts shared by the server and the Python SDK.

Access Tokens, REST shapes (dates, paging `meta`), and (later) signaling messages and
webhook signatures. May import: the standard library and `parlour.domain` types only.
Must never import: I/O libraries or any adapter layer.
"""
