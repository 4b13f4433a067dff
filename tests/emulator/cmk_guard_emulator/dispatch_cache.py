"""moto's dispatcher lists its own package directory on every request.

`DomainDispatcherApplication.get_application` asks `backends.list_of_moto_modules()`, which
lists and stats moto's ~180 service folders, while holding the dispatcher's one lock: every
request waited on everyone else's directory scan (a fifth of the time moto spent on a GetItem). The
folders do not change while the server runs, so the list is read once.
"""


def apply() -> None:
    from moto import backends

    if getattr(backends, "_cmk_guard_cached_modules", False):
        return
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    backends._cmk_guard_cached_modules = True  # type: ignore[attr-defined]
