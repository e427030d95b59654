"""The layers as DESIGN.md section 2 draws them, read from the source's imports (every import,
also those inside functions: a late import is still a dependency). A contributor who crosses a
layer, closes an import cycle or grows a module past 400 lines fails here, with the line."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drivers", "kiosk", "ui", "hub", "launch")
MAX_LINES = 400
CONTRACT = {"kiosk", "kiosk.api", "kiosk.errors", "kiosk.pins"}  # what the hub shares with the kiosk
KIOSK_MAY_USE_OF_DRIVERS = {"drivers", "drivers.base", "drivers.probe"}  # the Reader interface, the factory, doctor's probing


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones made absolute; a `from a import b`
    names both `a` and `a.b` (b may be a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def crossings(rule) -> list[str]:
    bad = []
    for path in sources():
        me = module_name(path)
        for line, module in imports_of(path):
            why = rule(me, module, module.split(".")[0])
            if why:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}: {why}")
    return bad


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def module_of(name: str) -> str:
    """The module an import names: itself, or the one a name is imported from (`kiosk.api.ShopperView`)."""
    return name if is_module(name) else name.rpartition(".")[0]


def in_contract(module: str) -> bool:
    return module_of(module) in CONTRACT


def rule(me: str, module: str, top: str) -> str:
    layer = me.split(".")[0]
    if layer == "drivers" and top in ("kiosk", "ui", "hub", "launch"):
        return "drivers/ knows nothing of the kiosk, the UI or the hub"
    if layer == "kiosk":
        if top in ("ui", "kivy", "hub", "launch"):
            return "the kiosk core never imports the UI, Kivy or the hub (the launch package wires them)"
        if top == "drivers" and module_of(module) not in KIOSK_MAY_USE_OF_DRIVERS:
            return "the core uses drivers/ only for the Reader interface, the factory and doctor's probing"
        if me in CONTRACT and top == "kiosk" and not in_contract(module):
            return "the shared contract stands alone: the hub loads it without the rest of the kiosk"
    if layer == "ui" and top in ("drivers", "hub", "launch", "sqlite3", "requests", "sqlite_utils", "nfc", "smartcard"):
        return "ui/ shows service results and calls service verbs; the demo's wiring is launch/demo.py"
    if layer == "ui" and me == "ui.router" and top == "kivy":
        return "the router runs without Kivy (its tests need no window)"
    if layer == "hub":
        if top in ("drivers", "ui", "launch", "kivy"):
            return "a hub server installs without Kivy or the readers"
        if top == "kiosk" and not in_contract(module):
            return "the hub imports only the shared contract (kiosk.api, kiosk.errors, kiosk.pins)"
    return ""


def test_every_import_stays_in_its_layer():
    assert crossings(rule) == []


def test_there_is_no_import_cycle():
    modules = {module_name(p): p for p in sources()}
    graph = {m: {i for _, i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_rules_catch_what_they_are_for():
    """The checker itself: each forbidden crossing is caught, each allowed one passes."""
    assert rule("drivers.hce", "kiosk.api", "kiosk")
    assert rule("kiosk.app", "ui.app", "ui") and rule("kiosk.cli", "hub.cli", "hub")
    assert rule("kiosk.sync", "drivers.nfcpy_reader", "drivers") and not rule("kiosk.app", "drivers", "drivers")
    assert rule("ui.demo", "drivers.base", "drivers") and rule("ui.demo", "hub.demo", "hub")
    assert not rule("ui.kiosk_app", "kiosk.results", "kiosk")
    assert rule("hub.staff", "kiosk.staff", "kiosk") and not rule("hub.staff", "kiosk.pins.verify_pin", "kiosk")
    assert not rule("hub.app", "kiosk.api.ShopperView", "kiosk") and not rule("launch.demo", "hub.demo", "hub")
    assert rule("kiosk.api", "kiosk.catalog", "kiosk") and rule("ui.router", "kivy.clock", "kivy")
