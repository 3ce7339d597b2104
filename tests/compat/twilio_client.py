"""The official `twilio` package, unchanged but for its base URLs, pointed at a Parlour
server (Video, Accounts and the 2010-04-01 API that mints NTS tokens)."""

from __future__ import annotations

from twilio.rest import Client

from parlour.testing import ServerThread
from tests.helpers import Account

__all__ = ["client_for"]


def client_for(server: ServerThread, account: Account, *, api_key: bool = True) -> Client:
    """A client as `account`: with its API key (the default) or its Auth Token."""
    if api_key:
        client = Client(account.key_sid, account.key_secret, account_sid=account.sid)
    else:
        client = Client(account.sid, account.auth_token)
    client.video.base_url = server.base_url
    client.accounts.base_url = server.base_url
    client.api.base_url = server.base_url
    return client
