"""The shape of the code: no import circles among the project's modules, the settings table and
the README agree, every module imports in a fresh interpreter, and the CLIP package stays free of
Django while the upload policy stays free of torch."""
import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clipsearch", "embeddings", "demo")
# Modules checked in a fresh interpreter without torch: the upload policy runs in processes
# (admin, management commands) that never load a model.
TORCH_FREE = ("embeddings.clip.preprocessing", "embeddings.files.image_policy", "embeddings.services")


# ---- discovering modules and their module-level imports ----------------------------------------
def project_modules(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Dotted name -> file for every .py file under the packages; a package's __init__ is its own node."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_imports(tree: ast.AST, lazy: bool = False):
    """Import statements: by default those that run when the module is imported (not inside
    functions, nor under `if TYPE_CHECKING:`; class bodies and module-level if/try blocks do run at
    import, so they count); with `lazy`, only those inside functions."""
    stack = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend((c, inner) for c in child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and inner == lazy:
                yield child
            stack.append((child, inner))


def module_level_imports(tree: ast.AST):
    return module_imports(tree)


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_names(name: str, path: Path, tree: ast.AST, lazy: bool = False):
    """The absolute module names a module's imports refer to (project or not): those run at import,
    or with `lazy` those inside functions."""
    for node in module_imports(tree, lazy):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
            continue
        if node.level:
            base = _package_of(name, path).split(".")
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        yield target, [alias.name for alias in node.names]


def import_graph(root: Path = ROOT, packages=PACKAGES, lazy: bool = False) -> dict[str, set[str]]:
    """module -> project modules it imports at module level (with `lazy`: inside functions).
    `from pkg import sub` where sub is a module means pkg.sub; `from pkg import name` means pkg;
    `import a.b` means a.b."""
    modules = project_modules(root, packages)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges = set()
        for target, names in imported_names(name, path, tree, lazy):
            if names is None:
                if target in modules:
                    edges.add(target)
                continue
            for n in names:
                if f"{target}.{n}" in modules:
                    edges.add(f"{target}.{n}")
                elif target in modules:
                    edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a path [a, b, ..., a], or None. Depth-first with colours, in sorted order."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node):
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, WHITE) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt, WHITE) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE:
            found = visit(start)
            if found:
                return found
    return None


# ---- (a) no import circle ----------------------------------------------------------------------
def test_find_cycle_on_synthetic_graphs():
    assert find_cycle({}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None  # a diamond
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}, "c": set()}) == ["a", "b", "a"]


def test_import_graph_builder_on_a_synthetic_tree(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\nimport os\n",
        "pkg/b.py": "from .c import thing\n",
        "pkg/c.py": "import pkg.a\n",
        "pkg/lazy.py": "def f():\n    from . import a\n\nclass K:\n    from .c import thing\n",
        "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n",
        "pkg/sub/__init__.py": "from .. import c\nfrom ..sub import deep\n",
        "pkg/sub/deep.py": "from pkg import b\nfrom pkg.sub import name_in_init\n",
        "other/__init__.py": "from pkg.c import thing\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {
        "pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"},
        "pkg.lazy": {"pkg.c"},  # the class body runs at import; the function's import does not
        "pkg.typed": set(), "pkg.sub": {"pkg.c", "pkg.sub.deep"}, "pkg.sub.deep": {"pkg.b", "pkg.sub"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def test_project_modules_cover_every_package():
    modules = project_modules()
    for name in ("clipsearch", "clipsearch.config", "embeddings", "embeddings.clip", "embeddings.clip.service",
                 "embeddings.search.selectors", "embeddings.management.commands.index_folder", "demo.synth"):
        assert name in modules, name


# The packages of the app, lowest first: a module may import its own layer and those below, never
# one above. The README's map says the same in words.
LAYERS = (
    ("clipsearch.config",),
    ("embeddings.clip", "demo"),
    ("embeddings.models", "embeddings.queue", "embeddings.apps"),
    ("embeddings.files",),
    ("embeddings.index",),
    ("embeddings.search",),
    ("embeddings.services",),
    ("embeddings.albums",),
    ("embeddings.library",),
    ("embeddings.duplicates",),
    ("embeddings.pipeline",),
    ("embeddings.backup",),
    ("embeddings.jobs",),
    ("embeddings.web", "embeddings.admin", "embeddings.templatetags", "embeddings.management", "embeddings.migrations"),
    ("clipsearch", "embeddings"),
)

# Every import inside a function, and why it is not at the top. None of them may close a circle
# (test_no_circle_even_through_lazy_imports) or reach up a layer.
LAZY_IMPORTS = {
    # the CLIP code brings torch, which processes that only queue work or serve the admin never need
    ("embeddings.pipeline.worker", "embeddings.clip.service"): "torch only once the worker starts",
    ("embeddings.pipeline.ingest", "embeddings.clip.service"): "torch only in processes that encode",
    ("embeddings.search.selectors", "embeddings.clip.service"): "torch only in processes that search",
    ("clipsearch.launcher", "embeddings.clip.service"): "torch only after the launcher set up its environment",
    ("embeddings.clip.immich", "embeddings.clip.onnx_engine"): "the export engine brings torch; Immich's ONNX models need none",
    # the launcher reads its environment and starts Redis before the settings are parsed
    ("clipsearch.launcher", "clipsearch.config"): "the variables are parsed after the launcher set them",
    ("clipsearch.launcher", "clipsearch.embedded_redis"): "Django is set up first",
    # a migration reads the app's code when it runs, never when Django lists the migrations
    ("embeddings.migrations.0003_keyword_search", "embeddings.search.keywords"): "when the migration runs",
}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{module} is in no layer of LAYERS"
    return rank


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def whole_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    top, lazy = import_graph(root, packages), import_graph(root, packages, lazy=True)
    return {m: top[m] | lazy.get(m, set()) for m in top}


def test_no_import_cycle_among_project_modules():
    graph = import_graph()
    # the graph is real: known edges are found
    assert "embeddings.search.selectors" in graph["embeddings.web.api_search"]
    assert "embeddings.clip.preprocessing" in graph["embeddings.files.image_policy"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_circle_even_through_lazy_imports():
    graph = whole_graph()
    assert "embeddings.clip.service" in graph["embeddings.pipeline.ingest"]  # a lazy edge is seen
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle (counting imports inside functions): " + " -> ".join(cycle)


def test_every_lazy_import_is_listed_with_its_reason():
    lazy = import_graph(lazy=True)
    found = {(a, b) for a, targets in lazy.items() for b in targets}
    assert not found - set(LAZY_IMPORTS), f"imports inside functions not in LAZY_IMPORTS: {sorted(found - set(LAZY_IMPORTS))}"
    assert not set(LAZY_IMPORTS) - found, f"LAZY_IMPORTS lists imports that are gone: {sorted(set(LAZY_IMPORTS) - found)}"


def test_no_package_imports_one_above_it():
    offenders = upward_imports(whole_graph())
    assert not offenders, offenders


def test_the_checks_catch_an_injected_circle_and_an_upward_import(tmp_path):
    """A copy of the app with one import added inside a function: the checks above fail on it."""
    import shutil

    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "*.bin",
                                                                                         "*.safetensors", "model"))
    index_file = tmp_path / "embeddings" / "index" / "file.py"
    index_file.write_text(index_file.read_text() + "\n\ndef _injected():\n    from embeddings.index import build\n")
    graph = whole_graph(tmp_path)
    cycle = find_cycle(graph)
    assert cycle is not None and "embeddings.index.file" in cycle and "embeddings.index.build" in cycle
    assert find_cycle(import_graph(tmp_path)) is None  # invisible to a check of module-level imports alone
    selectors = tmp_path / "embeddings" / "search" / "selectors.py"
    selectors.write_text(selectors.read_text() + "\n\ndef _upward():\n    from embeddings import services\n")
    assert "embeddings.search.selectors imports embeddings.services" in upward_imports(whole_graph(tmp_path))


def private_names_crossing(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    """`from m import _x` or `m._x` where m is another project module: a private name used outside."""
    modules = project_modules(root, packages)
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases = {}
        for lazy in (False, True):
            for node in module_imports(tree, lazy):
                if isinstance(node, ast.ImportFrom):
                    target = next(iter(imported_names(name, path, ast.Module(body=[node], type_ignores=[]))))[0]
                    for alias in node.names:
                        if alias.name.startswith("_") and target in modules:
                            found.append(f"{name} imports {target}.{alias.name}")
                        if f"{target}.{alias.name}" in modules:
                            aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_no_private_name_crosses_a_module(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("def _hidden():\n    pass\n")
    (tmp_path / "pkg" / "b.py").write_text("from pkg import a\nfrom pkg.a import _hidden\n\ndef f():\n    a._hidden()\n")
    assert private_names_crossing(tmp_path, ("pkg",)) == ["pkg.b imports pkg.a._hidden", "pkg.b uses pkg.a._hidden"]
    offenders = private_names_crossing()
    assert not offenders, offenders


MAX_MODULE_LINES = 300


def test_no_app_module_over_300_lines():
    """One idea per module: past 300 lines a module holds more than one (migrations aside)."""
    long = {name: n for name, path in project_modules(ROOT, ("clipsearch", "embeddings")).items()
            if ".migrations." not in name and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, long


# ---- (b) the settings table and the README agree -------------------------------------------------
README_SECTION = "## Configuration (environment variables)"
_ROW = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|")


def readme_variables(text: str) -> list[str]:
    """The variable names of the README's configuration table, in order."""
    assert README_SECTION in text, f"README has no {README_SECTION!r} section"
    section = text.split(README_SECTION, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    return [m.group(1) for line in section.splitlines() if (m := _ROW.match(line.strip()))]


def test_readme_parser_on_a_synthetic_readme():
    text = textwrap.dedent(f"""\
        # x
        | `NOT_THIS` | a | b |
        {README_SECTION}
        | variable | default | meaning |
        |---|---|---|
        | `A_VAR` | `1` | one |
        |`B_VAR`|x|y|
        text `C_VAR` in prose
        ## Next
        | `D_VAR` | - | - |
        """)
    assert readme_variables(text) == ["A_VAR", "B_VAR"]


def test_settings_table_and_readme_agree():
    from clipsearch.config import VARS

    table = [v.name for v in VARS]
    readme = readme_variables((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(table) == len(set(table)), "a variable appears twice in clipsearch.config.VARS"
    assert len(readme) == len(set(readme)), "a variable appears twice in the README table"
    assert not set(table) - set(readme), f"in clipsearch.config.VARS but not in README: {sorted(set(table) - set(readme))}"
    assert not set(readme) - set(table), f"in README but not in clipsearch.config.VARS: {sorted(set(readme) - set(table))}"


# ---- (c) and (d): fresh interpreters -------------------------------------------------------------
def _fresh_python(code: str, timeout=300) -> dict:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="clipsearch.settings", CLIPSEARCH_WARMUP="false",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORT_ALL = """
import importlib, json, sys, traceback
import django
django.setup()
failed = {}
for name in MODULES:
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_project_module_imports_in_a_fresh_interpreter():
    modules = sorted(project_modules())
    # demo.train trains only from main() (under `if __name__ == "__main__"`): importing it is safe
    assert 'if __name__ == "__main__"' in (ROOT / "demo" / "train.py").read_text()
    failed = _fresh_python(f"MODULES = {modules!r}\n{IMPORT_ALL}")
    assert not failed, "\n".join(f"{name}:\n{tb}" for name, tb in failed.items())


def test_clip_package_has_no_module_level_django_import():
    offenders = []
    for name, path in project_modules().items():
        if not (name == "embeddings.clip" or name.startswith("embeddings.clip.")):
            continue
        for target, _ in imported_names(name, path, ast.parse(path.read_text(encoding="utf-8"))):
            if target.split(".")[0] == "django":
                offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not offenders, offenders


def test_upload_policy_imports_without_torch():
    code = f"""
import importlib, json, sys
import django
django.setup()
before = "torch" in sys.modules
for name in {TORCH_FREE!r}:
    importlib.import_module(name)
print(json.dumps({{"after_setup": before, "after_imports": "torch" in sys.modules,
                   "transformers": "transformers" in sys.modules}}))
"""
    seen = _fresh_python(code)
    assert seen == {"after_setup": False, "after_imports": False, "transformers": False}, seen
