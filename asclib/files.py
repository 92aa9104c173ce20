"""Writing files so that a crash never leaves a half-written result behind.

Every artefact (corpus folders, tables, figures, executed notebooks) is first written under a
temporary name next to its destination and renamed into place only when complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def code_tree(path: str | Path):
    """The syntax tree of the Python file `path` without its docstrings: what code computes, so
    that a hash of it (run keys, `train.training_code_hash`; augmented clips, `augment`) ignores
    prose and comments."""
    import ast

    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def definitions_tree(path: str | Path, roots):
    """The syntax tree of `path` (`code_tree`) keeping only the top-level definitions (functions,
    classes, assignments) named in `roots` and those they name in turn: the code that one class or
    function of a module uses, so that a hash of it (a network's run keys, the feature cache,
    stored predictions) ignores the rest of the module. A root the module does not define is a
    ValueError."""
    import ast

    tree = code_tree(path)
    defined = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defined[name.id] = node
    missing = [root for root in roots if root not in defined]
    if missing:
        raise ValueError(f"{path} defines no {', '.join(missing)} at its top level")
    kept, todo = set(), list(roots)
    while todo:
        node = defined.get(todo.pop())
        if node is not None and id(node) not in kept:
            kept.add(id(node))
            todo.extend(name.id for name in ast.walk(node) if isinstance(name, ast.Name))
    tree.body = [node for node in tree.body if id(node) in kept]
    return tree


def recorded_settings(folder: str | Path, manifests) -> dict | None:
    """The settings that made `folder`, as the first of the file names `manifests` found in it
    records them (`folder_is_current`); None when it has none of them (a folder not made here)."""
    for manifest in manifests:
        if (Path(folder) / manifest).is_file():
            return json.loads((Path(folder) / manifest).read_text()).get("settings")
    return None


@contextmanager
def atomic_path(destination: str | Path):
    """Yield a temporary path beside `destination`; on success it replaces `destination`.

    Works for a file or a folder. On an exception the temporary path is removed and the
    previous `destination` (if any) is left untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.stem}.partial-{os.getpid()}{destination.suffix}")
    _remove(temporary)
    try:
        try:
            yield temporary
        except OSError as error:
            raise_if_disk_full(error, destination, "its previous version is left intact")
            raise
        if temporary.is_dir():
            _swap_folder(temporary, destination)
        else:
            os.replace(temporary, destination)
    finally:
        _remove(temporary)


def _swap_folder(temporary: Path, destination: Path) -> None:
    """Put the complete folder `temporary` in place of `destination`. A folder cannot replace a
    non-empty one in one step, so the old one is first moved aside. Another process may finish
    the same folder at the same moment (two notebooks making the same augmentations): if it moves
    the old one away first there is nothing to move, and if its complete copy lands first that
    copy is kept and ours dropped."""
    old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
    try:
        os.replace(destination, old)
    except FileNotFoundError:
        pass  # no previous version, or another process has just moved it aside
    try:
        os.replace(temporary, destination)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            if old.exists() and not destination.exists():
                os.replace(old, destination)  # the previous version back in place
            raise
    _remove(old)


class DiskFullError(OSError):
    """Writing a result failed for lack of space; what was there before is left intact."""


def raise_if_disk_full(error: OSError, destination: str | Path, left: str) -> None:
    """Raise a DiskFullError naming `destination` and what was `left` if `error` says the disk
    (or the user's quota) is full; return otherwise."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(error.errno, f"no space left on the disk while writing {destination} ({left}); "
                                      "free some space (`python -m asclib reproduce --dry-run` lists what each "
                                      "step needs) and run again: finished steps are not redone") from None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def folder_is_current(folder: str | Path, settings: dict, manifest: str, maker: str) -> bool:
    """Whether `folder` was made by `maker` with exactly `settings` (recorded in `manifest`).

    A folder without that manifest was not made by this project: refuse to touch it, so that a
    mistyped path can never overwrite someone's data.
    """
    folder = Path(folder)
    if not folder.exists():
        return False
    if not (folder / manifest).is_file():
        raise FileExistsError(f"{folder} exists and was not made by {maker} (no {manifest}); "
                              "refusing to overwrite it: choose another folder or remove it")
    return json.loads((folder / manifest).read_text()).get("settings") == settings
