"""Errors shared by every layer.

A `UserError` is a problem the user can fix (bad settings, bad input, a missing queue, an
over-limit request, no credentials): its message is one sentence naming the thing and the fix,
and front-ends print it without a traceback. Anything else is an internal error and keeps its
traceback.
"""


class UserError(Exception):
    """A problem the user caused and can fix; the message names the thing and the fix."""
