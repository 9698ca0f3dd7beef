"""A mail backend that behaves like a slow SMTP relay, without sending anything.

Connecting, authenticating and handing a message to a remote relay costs network round trips;
``EMAIL_SIMULATED_LATENCY_S`` (0.35 s by default) stands for them. Messages are kept in
``outbox`` (per process, capped) like Django's locmem backend, so nothing leaves the machine.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

__all__ = ["SlowSMTPBackend", "outbox"]

#: the last messages "sent" by this process
outbox: deque[EmailMessage] = deque(maxlen=100)


class SlowSMTPBackend(BaseEmailBackend):
    """Sleeps ``EMAIL_SIMULATED_LATENCY_S`` per connection, then keeps the messages."""

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.latency_s = float(getattr(settings, "EMAIL_SIMULATED_LATENCY_S", 0.35))

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        time.sleep(self.latency_s)  # connect, EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA
        for message in email_messages:
            message.message()  # render it, as a real backend would
            outbox.append(message)
        return len(email_messages)
