"""The one exception type users see: a single line naming the file/row/key and the fix."""


class PoseshiftError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints ``error: <message>`` and exits with status 2; library callers can catch it.
    """

    def __init__(self, message: str) -> None:
        # Keep it to one line so the CLI never prints a multi-line wall of text.
        super().__init__(" ".join(str(message).split()))
