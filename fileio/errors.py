"""The one exception type the CLI reports as a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input or a state the user can fix; the message says what is wrong and what to do."""
