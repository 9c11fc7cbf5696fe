from http.server import HTTPServer, SimpleHTTPRequestHandler

from config import BASE_PORT, PUBLIC_OFFSET, port_from_env

DEFAULT_PORT = BASE_PORT + PUBLIC_OFFSET


def serve() -> None:
    HTTPServer(("", port_from_env(DEFAULT_PORT)), SimpleHTTPRequestHandler).serve_forever()


if __name__ == "__main__":
    serve()
