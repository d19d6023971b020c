"""Which task holds each ``asyncio.Lock``, and the names demos give their primitives.

``asyncio.Lock`` keeps no owner. In CPython 3.11 to 3.14 its ``_locked`` is a plain
instance attribute that ``acquire`` sets to True in the acquiring task and ``release``
(and ``__init__``) sets to False. While :func:`install` is in effect, ``Lock._locked`` is a
class-level property: the value lives where it always did (the instance's ``__dict__``),
and the setter also notes ``asyncio.current_task()`` as the owner on True and forgets it
on False. Where that does not hold (``_locked`` missing from ``acquire``/``release``, or
already a class attribute), nothing is installed and owners are simply unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from typing import Any

#: instance-dict keys of this module (removed again on uninstall)
_OWNER = "_fastasync_owner"
_SEEN = "_fastasync_seen"

#: every lock acquired while installed (to find what a task holds)
_locks: weakref.WeakSet[asyncio.Lock] = weakref.WeakSet()
_users = 0
#: install/uninstall may also run on a watchdog thread (its loop closed under it)
_guard = threading.Lock()
_labels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def supported() -> bool:
    """True when ``asyncio.Lock`` keeps its state in a plain ``_locked`` attribute."""
    lock_type = asyncio.Lock
    if "_locked" in lock_type.__dict__:
        return False
    names = (lock_type.acquire.__code__.co_names, lock_type.release.__code__.co_names)
    return all("_locked" in used for used in names)


def _get_locked(lock: asyncio.Lock) -> bool:
    return bool(lock.__dict__.get("_locked", False))


def _set_locked(lock: asyncio.Lock, value: bool) -> None:
    state = lock.__dict__
    state["_locked"] = value
    if not value:
        state.pop(_OWNER, None)
        return
    try:
        task = asyncio.current_task()
    except RuntimeError:  # acquired outside a running loop: no owner to name
        task = None
    # a weak reference: a lock never keeps a finished task alive
    state[_OWNER] = weakref.ref(task) if task is not None else None
    if _SEEN not in state:
        state[_SEEN] = True
        _locks.add(lock)


def install() -> bool:
    """Start recording lock owners (refcounted); False when not supported here."""
    with _guard:
        return _install()


def _install() -> bool:
    global _users
    if _users:
        _users += 1
        return True
    if not supported():
        return False
    _users = 1
    asyncio.Lock._locked = property(_get_locked, _set_locked)  # type: ignore[attr-defined]
    return True


def uninstall() -> None:
    """Stop recording (the last user restores ``asyncio.Lock`` exactly as it was)."""
    with _guard:
        _uninstall()


def _uninstall() -> None:
    global _users
    if not _users:
        return
    _users -= 1
    if _users:
        return
    del asyncio.Lock._locked  # type: ignore[attr-defined]
    for lock in list(_locks):
        lock.__dict__.pop(_OWNER, None)
        lock.__dict__.pop(_SEEN, None)
    _locks.clear()


def installed() -> bool:
    """True while owners are being recorded."""
    return _users > 0


def owner_of(lock: asyncio.Lock) -> asyncio.Task[Any] | None:
    """The task that holds ``lock`` (None: free, unknown, or the owner is gone)."""
    ref = lock.__dict__.get(_OWNER)
    return ref() if ref is not None else None


def held_locks() -> list[tuple[asyncio.Lock, asyncio.Task[Any]]]:
    """Every held lock with a known owner."""
    pairs: list[tuple[asyncio.Lock, asyncio.Task[Any]]] = []
    for lock in list(_locks):
        owner = owner_of(lock)
        if owner is not None and _get_locked(lock):
            pairs.append((lock, owner))
    return pairs


def label(obj: Any, text: str) -> Any:
    """Name a lock, event, queue... for the task inspector ("lock A"); returns ``obj``."""
    # not weakly referenceable: it keeps its default name
    with contextlib.suppress(TypeError):
        _labels[obj] = text
    return obj


def label_of(obj: Any) -> str | None:
    """The name given with :func:`label`, if any."""
    if not _labels:  # the usual case, and a snapshot asks for every task's primitive
        return None
    try:
        return _labels.get(obj)
    except TypeError:
        return None


def default_name(obj: Any) -> str:
    """``lock A`` if labelled, else ``Lock 0x7f..``."""
    return label_of(obj) or f"{type(obj).__name__} {id(obj):#x}"
