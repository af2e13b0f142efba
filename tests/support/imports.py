"""The module names a piece of Python imports, read from its syntax tree without running it."""

import ast


def imported_names(tree: ast.Module) -> set[str]:
    """The absolute module names `tree` imports, with `package.name` for each `from package
    import name` (which may be a module)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names
