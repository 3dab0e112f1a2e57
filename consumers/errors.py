"""Errors that decide what happens to a job.

`JobInputError` is permanent: the input can never succeed (corrupt file, bad
zip, unknown model). The job ends `failed` at once and its message is the
reason shown to a person, so write it for a biologist, not for a developer.

Any other exception is treated as transient (storage hiccup, model server
scaling up) and the step is retried with backoff before the job fails.
"""


class JobInputError(Exception):
    """The job's input or options are invalid; retrying cannot help."""
