"""Faithful local emulators of the providers' key-management APIs.

The emulators are the *other side of the wire*: they share no code with keystate's
model, providers or core, so that they cannot agree with our own bugs. They are written
from the providers' documented behaviour (``shared/providers/*.md``) and checked against
the providers' official clients. Nothing here imports keystate outside this package;
the only dependency beyond the standard library is ``h11``.

Modules:

- :mod:`keystate.emulators.http` — request/response types, the ``EmulatorApp``
  protocol and the HTTP/1.1 server (``start_in_thread``, ``serve_forever``, ``serve``).
- :mod:`keystate.emulators.faults` — ``Knobs`` and ``FaultSpec``: latency and injected
  429/5xx/timeouts/resets/lost responses.
- :mod:`keystate.emulators.algolia` — ``AlgoliaEmulator``, Algolia's ``/1/keys`` API.

User documentation: ``docs/emulators.md``.
"""
