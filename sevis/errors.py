"""User-facing errors: each carries one clear sentence for the app and the CLI."""


class SevisError(Exception):
    """An error whose message is meant for the user as it is (no traceback). `cli_hint` is said after it on the
    command line only (a flag to try, which means nothing to a student in the app)."""

    def __init__(self, *args, cli_hint: str = "") -> None:
        super().__init__(*args)
        self.cli_hint = cli_hint


class ImageError(SevisError):
    """The input is not a usable image."""


class ModelError(SevisError):
    """A model spec or checkpoint cannot be loaded."""


class DatasetError(SevisError):
    """A dataset is missing or malformed."""


class ExportError(SevisError):
    """A figure cannot be exported in the requested format."""
