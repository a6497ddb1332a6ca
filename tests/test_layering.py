"""The import graph points down and has no cycles.

Layers, bottom to top: core (spec, blocks, backbone, heads, models, checkpoints, layouts, detectors,
hub, weights, errors, data, complexity, export) -> engine (recipes, training) -> tasks -> inference
(`hrnet.Predictor`) and runtime -> the command line (`cli`, `*.commands`). Core imports no task, no
engine and no CLI; the engine reaches tasks only through the registry (`hrnet.tasks.get_task`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hrnet"
CORE = ("hrnet.spec", "hrnet.blocks", "hrnet.backbone", "hrnet.heads", "hrnet.models", "hrnet.checkpoints",
        "hrnet.layouts", "hrnet.detectors", "hrnet.hub", "hrnet.weights", "hrnet.errors", "hrnet.data",
        "hrnet.complexity", "hrnet.export")
ABOVE_CORE = ("hrnet.tasks", "hrnet.engine", "hrnet.inference", "hrnet.runtime", "hrnet.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ["hrnet", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The hrnet modules `name` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hrnet")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("hrnet"):
                found.add(module)
                found |= {f"{module}.{a.name}" for a in node.names}
    modules = _modules()
    return {m for m in found if m in modules and m != name}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_core_modules_import_no_task_engine_inference_or_cli():
    offences = [(name, imported) for name, path in _modules().items() if _under(name, CORE)
                for imported in _imports(name, path, top_level_only=False) if _under(imported, ABOVE_CORE)]
    assert not offences, offences


def test_the_engine_reaches_tasks_only_through_the_registry():
    offences = [(name, imported) for name, path in _modules().items()
                if _under(name, ("hrnet.engine",)) and not name.endswith(".commands")
                for imported in _imports(name, path, top_level_only=False)
                if (_under(imported, ("hrnet.tasks",)) and imported != "hrnet.tasks")
                or _under(imported, ("hrnet.inference", "hrnet.cli"))]
    assert not offences, offences


def test_tasks_import_no_command_line():
    offences = [(name, imported) for name, path in _modules().items() if _under(name, ("hrnet.tasks",))
                for imported in _imports(name, path, top_level_only=False)
                if imported == "hrnet.cli" or imported.endswith(".commands") and not name.endswith("demo")]
    assert not offences, offences


def test_no_import_cycles_at_module_level():
    modules = _modules()
    graph = {name: _imports(name, path, top_level_only=True) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is not a cycle of layers.
    graph = {name: {m for m in deps if not m.startswith(name + ".")} for name, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def test_every_module_imports_on_its_own():
    """Each module imported first, in a fresh set of hrnet modules: an import-order cycle fails here."""
    names = [n for n in _modules() if not n.endswith("__main__")]
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for key in [k for k in sys.modules if k == 'hrnet' or k.startswith('hrnet.')]:\n"
        "        del sys.modules[key]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as error:\n"
        "        if 'optional' not in str(error) and not isinstance(error, ModuleNotFoundError):\n"
        "            failed.append((name, traceback.format_exc().splitlines()[-1]))\n"
        "print(failed)\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize("module", ["hrnet.inference.commands", "hrnet.engine.commands"])
def test_command_modules_are_argparse_over_library_functions(module):
    """Command modules define sub-commands; the work is in library modules they call."""
    path = _modules()[module]
    tree = ast.parse(path.read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert any(f.name == "add_commands" for f in functions)
    assert all(len(f.body) < 40 for f in functions), [f.name for f in functions if len(f.body) >= 40]
