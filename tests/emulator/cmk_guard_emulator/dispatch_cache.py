"""moto's dispatcher lists its own package directory on every request.

`DomainDispatcherApplication.get_application` asks `backends.list_of_moto_modules()`, which
lists and stats moto's ~180 service folders, while holding the dispatcher's one lock: every
request waited on everyone else's directory scan (a fifth of the time moto spent on a GetItem). The
folders do not change while the server runs, so the list is read once.

Likewise moto lists a response class's methods (`inspect.getmembers`) on every request to
find the action's handler; every patch is applied before the server answers, so each class's
list is made once.
"""

import functools


def apply() -> None:
    from moto import backends

    if getattr(backends, "_cmk_guard_cached_modules", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    backends._cmk_guard_cached_modules = True  # type: ignore[attr-defined]

    from moto.core import responses

    listed = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    responses.method_names_from_class = lambda clazz: list(listed(clazz))  # type: ignore[assignment]
