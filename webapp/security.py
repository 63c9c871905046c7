"""Security headers on every response: a strict Content-Security-Policy and friends.

Every script and style comes from a file under /static (no inline script, no inline event
handler, no style attribute, htmx without eval), so the policy can forbid everything else.
``CONTENT_SECURITY_POLICY`` in the environment replaces it; set it empty to send none.
"""

from flask import Flask, Response

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def register(app: Flask) -> None:
    policy = app.config.get("CONTENT_SECURITY_POLICY")
    if policy is None:
        policy = STRICT_CSP

    @app.after_request
    def security_headers(response: Response) -> Response:
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
