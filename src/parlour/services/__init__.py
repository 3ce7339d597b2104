"""Use cases. Each service takes its ports in its constructor and raises `TwilioError`s.

May import: `parlour.domain`, `parlour.protocol`.
Must never import: adapters (`api`, `store`, `signaling`, `media`, …) or `app`.
"""
