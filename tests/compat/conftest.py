"""Fixtures for the `twilio` package compatibility tests."""

from __future__ import annotations

import pytest
from twilio.rest import Client

from parlour.testing import ServerThread
from tests.compat.twilio_client import client_for
from tests.helpers import Account


@pytest.fixture
def client(server: ServerThread, account: Account) -> Client:
    """The official client as `account`, against the test's server."""
    return client_for(server, account)
