"""ctxspec's reference implementation: small, readable, and conforming to spec/.

It imports neither Flask nor Werkzeug, nor anything from ``conformance``.
"""

from .local import Local, LocalStack, release_local
from .proxy import LocalProxy

__all__ = ["Local", "LocalProxy", "LocalStack", "release_local"]
