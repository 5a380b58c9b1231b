"""The packages import one way: acir_core <- acir_engine <- pipelines <- training <- acir_cli, and
the network is reached only through training.infer, which needs nothing but torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("acir_core", "acir_engine", "pipelines", "training", "acir_cli")
# the one upward edge: the engine loads the network lazily, through this module only
SEAMS = {("acir_engine.network", "training.infer")}
INFER_MAY_IMPORT = ("torch", "numpy", "training.archs", "training.checkpoint", "acir_core.errors", "fsspec",
                    "__future__", "dataclasses", "io", "os", "pathlib")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in LAYERS:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            found += [(f"{base}.{a.name}", id(node) in top) for a in node.names] + [(base, id(node) in top)]
    return found


def _resolve(target: str, mods: dict[str, Path]) -> str | None:
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_no_package_imports_one_above_it():
    mods = _modules()
    upward = []
    for name, path in mods.items():
        for target, _ in _imports(name, path):
            dep = _resolve(target, mods)
            if dep and _layer(dep) > _layer(name) and (name, dep) not in SEAMS:
                upward.append(f"{name} imports {dep}")
    assert not upward, "upward imports:\n" + "\n".join(sorted(set(upward)))


def test_no_circular_imports_between_modules():
    """Module-level imports form no cycle (a cycle works only by import order, and breaks the
    moment someone imports the other module first)."""
    mods = _modules()
    graph = {name: {d for t, top in _imports(name, path) if top and (d := _resolve(t, mods)) and d != name
                    and not name.startswith(d + ".")}  # a package's __init__ runs before its modules anyway
             for name, path in mods.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checks above must be able to fail: a core module importing the engine is reported."""
    mods = _modules()
    fake = tmp_path / "bad.py"
    fake.write_text("from acir_engine.photo import restore_photo\n")
    deps = [_resolve(t, mods) for t, _ in _imports("acir_core.bad", fake)]
    assert any(d and _layer(d) > _layer("acir_core.bad") for d in deps)


def test_training_infer_imports_only_torch_archs_and_checkpoint():
    path = ROOT / "training" / "infer.py"
    for target, _ in _imports("training.infer", path):
        assert target.startswith(INFER_MAY_IMPORT), f"training.infer imports {target}"


_BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pyarrow', 'apache_beam'):
            raise ImportError(f'blocked for this test: {name}', name=name)
sys.meta_path.insert(0, Block())
"""


def test_inference_module_imports_without_pyarrow_and_beam():
    pytest.importorskip("torch")
    code = _BLOCK + ("import training.infer, acir_engine.network as n\n"
                     "assert n.resolve_stage('auto') == 'gca'\n"
                     "assert 'pyarrow' not in sys.modules and 'apache_beam' not in sys.modules\n"
                     "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_a_missing_network_module_is_named():
    code = _BLOCK.replace("('pyarrow', 'apache_beam')", "('torch',)") + (
        "from acir_engine.network import resolve_stage\n"
        "from acir_core.errors import InvalidParameter\n"
        "assert resolve_stage('auto') == 'sca'\n"
        "try:\n    resolve_stage('gca')\nexcept InvalidParameter as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "module 'torch' is missing" in r.stdout, r.stdout + r.stderr
