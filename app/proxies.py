"""The client's address behind TRUSTED_PROXIES proxies, for the dashboard and the console proxy.

Each proxy appends the address it received the request from to X-Forwarded-For, so with N
trusted proxies the N-th value from the right is the address the outermost of them saw, the
client's; anything to its left the client wrote itself. With 0, the header is ignored and the
peer's address is the client's. Either way the header is dropped once read.
"""


def client_address(peer, forwarded_for, trusted):
    """The client's address: the `trusted`-th X-Forwarded-For value from the right, or `peer`
    when no proxy is trusted or the header names fewer addresses (werkzeug's ProxyFix rule)."""
    if not trusted or not forwarded_for:
        return peer
    values = [value.strip() for value in forwarded_for.split(",")]
    return values[-trusted] if len(values) >= trusted else peer


class ForwardedForConsumed:
    """Drops X-Forwarded-For once the client's address is decided (or the header ignored), so
    nothing downstream reads the client's own words: Flask-Login's session protection takes
    the header's first value, which a client writes, and would let a stolen cookie pass as
    its owner's address."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ.pop("HTTP_X_FORWARDED_FOR", None)
        return self.wsgi_app(environ, start_response)


def init_app(app):
    """Believe X-Forwarded-For from TRUSTED_PROXIES proxies, so that request.remote_addr (the
    login throttle, the audit log, a session's recorded address) is the client's, not the balancer's."""
    trusted = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = ForwardedForConsumed(app.wsgi_app)
    if trusted:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # X-Forwarded-For only: the cookie's Secure flag is a setting (SESSION_COOKIE_SECURE),
        # Nube renders no absolute URLs, and believing X-Forwarded-Proto would turn on
        # Flask-WTF's strict Referer check, refusing every form behind a balancer that
        # rewrites the Host header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted, x_proto=0, x_host=0, x_port=0)
