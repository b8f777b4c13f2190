"""The package's import graph: no cycles, and every import points down the layer order of
docs/design.md ("Layers")."""

import ast
from pathlib import Path

import handmt

PACKAGE = Path(handmt.__file__).parent

# Bottom to top; a module may import only from its own layer or from layers below it.
LAYERS = [
    {"errors", "hand", "atomic"},
    {"registry"},
    {"geometry", "losses", "metrics"},
    {"data"},
    {"models"},
    {"engine"},
    {"config"},
    {"viz", "export", "predict"},
    {"cli"},
]


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """Every handmt module `path` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("handmt"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("handmt"))
    return found


def graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {t for t in imports(path) if t in modules and t != name}
            for name, path in modules.items()}


def layer(module):
    top = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def test_every_module_has_a_layer():
    assert [m for m in graph() if m != "handmt" and layer(m) is None] == []


def test_imports_point_down():
    upward = [(m, t) for m, targets in graph().items() if m != "handmt"
              for t in targets if t != "handmt" and layer(t) > layer(m)]
    assert upward == []


def test_no_import_cycles():
    edges, cycles = graph(), []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(edges[node]):
            # a package's __init__ importing its own submodules is how it is assembled
            if node == target.rpartition(".")[0] or target.startswith(node + "."):
                continue
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []
