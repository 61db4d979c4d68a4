"""One exception type for every user-facing problem, so the CLI can print one line and exit non-zero."""


class TalkingHeadError(Exception):
    """A problem the user can fix (bad file, wrong option); shown as one line, never a traceback."""
