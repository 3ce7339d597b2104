"""Network traversal: the TURN servers (and their short-lived credentials) a client gets,
in the signaling `iced` message and from Twilio's Network Traversal Service resource
(`POST /2010-04-01/Accounts/{AccountSid}/Tokens.json`)."""

from __future__ import annotations

from dataclasses import dataclass

from parlour.domain.clock import Clock
from parlour.domain.sids import AccountSid
from parlour.domain.turn import TurnCredentials, TurnServers

__all__ = ["NetworkTraversal"]


@dataclass(frozen=True)
class NetworkTraversal:
    """Mints TURN credentials, or none when the server has no TURN configured.

    Args:
        servers: the configured TURN servers (None: clients reach the SFU directly).
        ttl: seconds the credentials given in `iced` stay valid.
    """

    clock: Clock
    servers: TurnServers | None = None
    ttl: int = 86400

    def credentials(self, account: AccountSid, ttl: int | None = None) -> TurnCredentials | None:
        """Credentials for one of `account`'s clients (the account is the TURN user, so
        coturn's logs say whose relay it is without naming a person)."""
        if self.servers is None:
            return None
        now = self.clock.now().timestamp()
        return self.servers.credentials(now=now, ttl=ttl or self.ttl, user=account)
