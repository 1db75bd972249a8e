"""The source layout docs/architecture.md describes, checked on the source:

- each module includes only the modules its row in the module table allows
  (and src/main.c only cli/ and server/);
- only server/ includes <microhttpd.h> (it alone speaks HTTP to clients);
- every C file the repository tracks is as clang-format-14 and .clang-format
  lay it out (house style; CI's bootstrap installs clang-format-14);
- no dependency cycle between files of different concerns, inside a module
  or across modules. A file depends on another when it uses a function the
  other defines; a concern is a group of files sharing a name stem ("ws",
  "ws_loop", "ws_session" are one) or a private `<concern>_internal.h`.

Run it directly (`/usr/bin/python3 tests/integration/test_layout.py`) to print
the file graph of every module.
"""
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")
ARCH = os.path.join(ROOT, "docs", "architecture.md")

INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', re.M)
# A function definition starts at column 0: `type name(` ... and its body's
# `{` opens a line of its own (the house style); declarations end in `;`.
DEFINITION = re.compile(r"^(?!static\b)(?!typedef\b)[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\(([^;{]*?)\)\s*\n\{",
                        re.M)
IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def sources():
    """{relative path: text without comments and string contents} for src/."""
    out = {}
    for d, _, files in os.walk(SRC):
        for f in files:
            if f.endswith((".c", ".h")):
                p = os.path.join(d, f)
                with open(p, errors="replace") as fh:
                    out[os.path.relpath(p, SRC)] = fh.read()
    return out


def module_of(rel):
    return rel.split("/")[0] if "/" in rel else rel


def stem(rel):
    return os.path.splitext(os.path.basename(rel))[0]


def concern_of(rel, texts):
    """Files sharing a `<x>_internal.h` are concern x; else the stem before '_'."""
    mod = module_of(rel)
    for m in INCLUDE.finditer(texts[rel]):
        inc = m.group(2)
        if m.group(1) == '"' and inc.startswith(mod + "/") and inc.endswith("_internal.h"):
            return stem(inc)[: -len("_internal")].split("_")[0]
    return stem(rel).split("_")[0]


def file_graph(texts):
    """Edges a.c -> b.c when a.c names a function b.c defines."""
    code = {rel: strip_comments(t) for rel, t in texts.items()}
    defined = {}
    for rel, t in code.items():
        if rel.endswith(".c"):
            for m in DEFINITION.finditer(t):
                defined.setdefault(m.group(1), rel)
    edges = defaultdict(set)
    for rel, t in code.items():
        if not rel.endswith(".c"):
            continue
        for name in set(IDENT.findall(t)):
            target = defined.get(name)
            if target and target != rel:
                edges[rel].add(target)
    return edges


def cycles_between_concerns(texts, edges):
    """Strongly connected components of the file graph that span concerns."""
    nodes = sorted({n for n in edges} | {m for v in edges.values() for m in v})
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan, iterative enough for a few hundred files
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    bad = []
    for comp in comps:
        kinds = {(module_of(f), concern_of(f, texts)) for f in comp}
        if len(kinds) > 1:
            bad.append(comp)
    return bad


def allowed_modules():
    """{module: set of modules it may include} from docs/architecture.md's table:
    rows `| `mod` | owns … | `a`, `b` |` (the last cell lists what it may include)."""
    with open(ARCH) as f:
        doc = f.read()
    table = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`[a-z]+/?`", cells[0]):
            mod = cells[0].strip("`/")
            table[mod] = set(re.findall(r"`([a-z]+)/?`", cells[-1])) - {"nothing"}
    return table


def test_modules_include_only_what_the_architecture_allows():
    texts = sources()
    table = allowed_modules()
    modules = sorted({module_of(r) for r in texts if "/" in r})
    assert set(modules) <= set(table), f"modules missing from docs/architecture.md: {set(modules) - set(table)}"
    bad = []
    for rel, t in texts.items():
        mod = module_of(rel)
        for m in INCLUDE.finditer(t):
            if m.group(1) != '"':
                continue
            dep = module_of(m.group(2))
            ok = dep in ("cli", "server") if rel == "main.c" else (dep == mod or dep in table.get(mod, ()))
            if not ok:
                bad.append(f"{rel} includes {m.group(2)}")
    assert not bad, "includes the module table does not allow:\n" + "\n".join(sorted(bad))


def test_only_server_speaks_http():
    texts = sources()
    bad = [rel for rel, t in texts.items()
           if module_of(rel) != "server" and re.search(r"#\s*include\s+<microhttpd\.h>", t)]
    assert not bad, f"microhttpd.h outside src/server/: {bad}"


def test_no_dependency_cycle_between_concerns():
    texts = sources()
    bad = cycles_between_concerns(texts, file_graph(texts))
    assert not bad, "files of different concerns depend on each other in a cycle:\n" + "\n".join(
        " <-> ".join(c) for c in bad)


# libc calls that keep hidden static state: two request threads calling one of them race.
NOT_REENTRANT = re.compile(r"(?<![\w.>])(strtok|localtime|gmtime|asctime|ctime)\s*\(")


def non_reentrant_calls(texts):
    return [f"{rel}: {m.group(1)}()" for rel, t in texts.items()
            for m in NOT_REENTRANT.finditer(re.sub(r"/\*.*?\*/|//[^\n]*", "", t, flags=re.S))]


def test_no_non_reentrant_libc_calls():
    """Every part of the server runs on several threads (request pool, decoders, stream workers): use
    strtok_r, localtime_r, gmtime_r."""
    bad = non_reentrant_calls(sources())
    assert not bad, "calls with hidden static state (use the _r form):\n" + "\n".join(bad)
    assert non_reentrant_calls({"x.c": "s = strtok(buf, \" \"); t = strtok_r(a, b, &c); /* strtok( */"}) == [
        "x.c: strtok()"]


def test_c_sources_are_clang_formatted():
    fmt = shutil.which("clang-format-14")
    if not fmt:
        raise AssertionError("clang-format-14 is not installed: scripts/bootstrap.sh installs it")
    files = [os.path.relpath(os.path.join(d, f), ROOT) for top in ("src", "tests", "fuzz", "bench", "scripts")
             for d, dirs, names in os.walk(os.path.join(ROOT, top)) if "node_modules" not in d
             for f in names if f.endswith((".c", ".h"))]
    assert len(files) > 200, files
    r = subprocess.run([fmt, "--dry-run", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    bad = sorted({line.split(":")[0] for line in r.stderr.splitlines() if "clang-format-violations" in line})
    assert r.returncode == 0 and not bad, f"not clang-formatted (clang-format-14 -i FILE): {bad}\n{r.stderr[-2000:]}"


def test_checker_sees_a_cycle():
    """The cycle check is not vacuous: two concerns calling each other are found."""
    texts = {"server/a.c": "#include \"server/b.h\"\nvoid ld_a(void)\n{\n    ld_b();\n}\n",
             "server/b.c": "#include \"server/a.h\"\nvoid ld_b(void)\n{\n    ld_a();\n}\n",
             "server/ws.c": "#include \"server/ws_internal.h\"\nvoid ws_x(void)\n{\n    ws_y();\n}\n",
             "server/ws_loop.c": "#include \"server/ws_internal.h\"\nvoid ws_y(void)\n{\n    ws_x();\n}\n"}
    assert cycles_between_concerns(texts, file_graph(texts)) == [["server/a.c", "server/b.c"]]


if __name__ == "__main__":
    texts = sources()
    edges = file_graph(texts)
    for rel in sorted(edges):
        print(f"{rel} [{concern_of(rel, texts)}] -> {', '.join(sorted(edges[rel]))}")
    for c in cycles_between_concerns(texts, edges):
        print("CYCLE:", " <-> ".join(c))
