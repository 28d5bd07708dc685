"""S3-style storage errors: the XML bodies an S3/R2 store answers with."""

from __future__ import annotations

from xml.sax.saxutils import escape

from aiohttp import web

__all__ = ["S3Error"]


class S3Error(Exception):
    """A refusal of presigned storage, answered as ``<Error><Code>...`` XML."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, resource: str, request_id: str) -> web.Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{escape(request_id)}</RequestId>"
            "</Error>"
        )
        return web.Response(status=self.status, text=body, content_type="application/xml")
