"""The one error type the servicers turn into a gRPC status."""

import grpc


class ServingError(Exception):
    """A failed request, with the gRPC status code and message TF-Serving would answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
