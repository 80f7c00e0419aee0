"""Errors the playground raises on bad input.

Every message is one line that says what is wrong and how to fix it. The CLI prints
``error: <message>`` and pages show it with ``st.error`` instead of a traceback.
"""


class PlaygroundError(Exception):
    """Base class for every user-facing error."""


class ConfigError(PlaygroundError, ValueError):
    """A recipe, preset or ``--set`` override is wrong (unknown key, wrong type...)."""


class DataNotFoundError(PlaygroundError, FileNotFoundError):
    """A dataset cannot be found where the playground looked for it."""


class DataFormatError(PlaygroundError, ValueError):
    """Data was found but has the wrong shape, format or content."""


class CheckpointError(PlaygroundError, ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class TrainingDivergedError(PlaygroundError, FloatingPointError):
    """The loss became NaN or infinite during training."""


class StoreError(PlaygroundError, ValueError):
    """The annotation store cannot do what was asked (unknown queue or item, bad action or label,
    a database it cannot open)."""


class ConflictError(StoreError):
    """Another annotator holds or has decided the item, or a request id was reused for another decision."""


class AccessError(PlaygroundError):
    """Not allowed: a wrong name or password, a disabled account, or a user without the right
    (an annotator on a project they are not on, a non-admin changing accounts)."""
