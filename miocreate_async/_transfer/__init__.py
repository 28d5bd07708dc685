"""Storage I/O: inputs and their local checks, the streamed PUT, downloads, the upload cache.

It knows no API operation: the client hands it a presigned URL (or a way to get one). Import
from the submodules, so that naming an input type loads no I/O code.
"""
