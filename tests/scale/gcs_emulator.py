"""The GCS emulator of the scale suite, serving several connections at once.

``gcp-storage-emulator`` answers on a single-threaded ``http.server.HTTPServer``: while one client
keeps a connection open (PyArrow's GCS client pools them), a request on a second connection waits for
ever. Here it is served by a ``ThreadingHTTPServer``, one request handled at a time (its storage is not
made for concurrent changes), so idle pooled connections no longer block the others.

    python -m tests.scale.gcs_emulator PORT
"""

from __future__ import annotations

import logging
import sys
import threading
from http import server

from gcp_storage_emulator import server as emulator


def main(port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    lock = threading.Lock()
    handle = emulator.Router.handle

    def one_at_a_time(self: emulator.Router, method: str) -> None:
        with lock:
            handle(self, method)

    emulator.Router.handle = one_at_a_time  # type: ignore[method-assign]
    emulator.server.HTTPServer = server.ThreadingHTTPServer  # type: ignore[misc]
    emulator.Server("127.0.0.1", port, in_memory=True).run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
