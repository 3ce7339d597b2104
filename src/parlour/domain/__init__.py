"""Pure domain core: records, state rules, validation and the one error tree.

May import: the standard library and `parlour.domain` only.
Must never import: asyncio networking, HTTP, SQL, media libraries, or any other parlour layer.
"""
