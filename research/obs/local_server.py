"""A local S3-compatible server (moto) on 127.0.0.1 for tests and dry runs of the OBS workflow.

Usage: ``python -m research.obs.local_server --port 9000 [--request_log FILE]``

``--request_log`` appends one line per request, ``METHOD /bucket/key?query STATUS``, so a test can count
from the server side which multipart parts were actually sent. Headers are never written (the
``Authorization`` header carries the access key id). Data is kept in memory: killing the server loses
every object and every open multipart upload, which is how tests produce a stale resume record.

Caveat: moto accepts any access key and does not verify request signatures.
"""
import argparse
import sys
import threading
from preprocess.cli import Parser


class RequestLog:
    """WSGI middleware that appends ``METHOD path?query status`` for each request to ``path``."""

    def __init__(self, app, path: str):
        self.app = app
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        line = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"

        def logging_start_response(status, headers, exc_info=None):
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{line} {status.split()[0]}\n")
            return start_response(status, headers, exc_info)

        return self.app(environ, logging_start_response)


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.obs.local_server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--request_log", help="append one line per request here (no headers)")
    args = parser.parse_args(argv)

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    if args.request_log:
        app = RequestLog(app, args.request_log)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
