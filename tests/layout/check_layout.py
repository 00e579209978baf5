#!/usr/bin/env python3
"""check_layout.py ROOT — the folders are the architecture, checked.

1. The folder map in docs/DESIGN.md matches the tree: every folder it
   names exists, and every folder holding source is named.
2. core/ includes point down the layers only (the table LAYERS below, the
   same order docs/DESIGN.md draws), and the folder graph they make has no
   cycle; a folder's private headers stay inside it (another folder may
   include only its <folder>_internal.h).
3. Kernels include only kernels/ headers, their own folder's headers and
   the public API (core/include/empo/), never core's internals.
4. No op picks a kernel itself: nothing calls empo_use_reference() or an
   empo_k_* / empo_ref_* / *_cpu / *_ref kernel from core/; they go through
   the kernel table (empo_kernels()->slot).
5. No source file or page is over 800 lines.
6. Every file or folder that a comment, script or page names by its path
   (core/..., kernels/..., lua/..., tests/..., recipes/..., docs/...)
   exists, so that a move cannot leave a pointer to nowhere.
Prints every violation and exits 1 if there is one."""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..'))
SOURCE_EXT = ('.c', '.h', '.lua', '.py', '.sh', '.js', '.cmake')
MAX_LINES = 800
# what each core folder may include besides itself and the public API
LAYERS = {
    'base': {'kernels'},
    'tensor': {'base', 'kernels'},
    'autograd': {'tensor', 'base', 'kernels'},
    'ops': {'autograd', 'tensor', 'base', 'kernels'},
    'io': {'tensor', 'base', 'kernels'},
    'tokenizer': {'base'},
    'cluster': {'base'},
    'generate': {'ops', 'autograd', 'tensor', 'base', 'kernels'},
}
SKIP_DIRS = {'.git', 'build', 'build-sanitize', 'node_modules', '__pycache__'}

problems = []


def fail(msg):
    problems.append(msg)


def rel(path):
    return os.path.relpath(path, ROOT)


def walk_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith('build'))
        for f in sorted(filenames):
            yield os.path.join(dirpath, f)


def source_dirs():
    dirs = set()
    for path in walk_files():
        r = rel(path)
        if r.endswith(SOURCE_EXT) and '/' in r:
            dirs.add(os.path.dirname(r))
    return dirs


# ---- 1. the map in docs/DESIGN.md ----
def design_map():
    path = os.path.join(ROOT, 'docs', 'DESIGN.md')
    if not os.path.exists(path):
        fail('docs/DESIGN.md is missing')
        return set()
    text = open(path, encoding='utf-8').read()
    m = re.search(r'^## .*[Ff]older map.*?```\n(.*?)```', text, re.S | re.M)
    if not m:
        fail('docs/DESIGN.md: no "## ... folder map" section with a ``` block')
        return set()
    named = set()
    for line in m.group(1).splitlines():
        word = line.split(' ', 1)[0].strip()
        if word.endswith('/'):
            named.add(word.rstrip('/'))
    return named


named = design_map()
for d in sorted(named):
    if not os.path.isdir(os.path.join(ROOT, d)):
        fail(f'docs/DESIGN.md names {d}/, which does not exist')
for d in sorted(source_dirs()):
    if d not in named:
        fail(f'{d}/ holds source but docs/DESIGN.md\'s folder map does not name it')

# ---- 2, 3. includes ----
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    return INCLUDE.findall(open(path, encoding='utf-8', errors='replace').read())


def c_files(top):
    for path in walk_files():
        r = rel(path)
        if r.startswith(top + '/') and r.endswith(('.c', '.h')):
            yield r


graph = {f: set() for f in LAYERS}
for r in c_files('core'):
    parts = r.split('/')
    if parts[1] == 'include':
        for inc in includes(os.path.join(ROOT, r)):
            if not inc.startswith('empo/'):
                fail(f'{r}: the public API includes "{inc}" (only empo/*.h)')
        continue
    folder = parts[1]
    if folder not in LAYERS:
        fail(f'{r}: core/{folder}/ is not a known layer (add it to LAYERS and docs/DESIGN.md)')
        continue
    for inc in includes(os.path.join(ROOT, r)):
        if inc.startswith('empo/'):
            continue
        if '/' not in inc:   # a header of the same folder
            if not os.path.exists(os.path.join(ROOT, 'core', folder, inc)):
                fail(f'{r}: includes "{inc}", not in core/{folder}/')
            continue
        dep = inc.split('/')[0]
        if dep == folder:
            continue
        if dep not in LAYERS[folder]:
            fail(f'{r}: core/{folder}/ may not include "{inc}" (allowed: {", ".join(sorted(LAYERS[folder]))})')
            continue
        if dep != 'kernels' and os.path.basename(inc) != f'{dep}_internal.h':
            fail(f'{r}: includes "{inc}", a header private to core/{dep}/ (only {dep}/{dep}_internal.h is shared)')
        if dep != 'kernels':
            graph[folder].add(dep)

# the layer graph the includes make has no cycle
state = {}


def visit(node, stack):
    state[node] = 'open'
    for nxt in sorted(graph.get(node, ())):
        if state.get(nxt) == 'open':
            fail('include cycle in core/: ' + ' -> '.join(stack + [node, nxt]))
        elif nxt not in state:
            visit(nxt, stack + [node])
    state[node] = 'done'


for node in sorted(graph):
    if node not in state:
        visit(node, [])

for r in c_files('kernels'):
    here = os.path.dirname(r)
    for inc in includes(os.path.join(ROOT, r)):
        if inc.startswith('kernels/') or inc.startswith('empo/'):
            target = os.path.join(ROOT, inc if inc.startswith('kernels/') else 'core/include/' + inc)
            if not os.path.exists(target):
                fail(f'{r}: includes "{inc}", which does not exist')
        elif '/' in inc or not os.path.exists(os.path.join(ROOT, here, inc)):
            fail(f'{r}: a kernel includes "{inc}" (only kernels/*.h, its own folder\'s headers, empo/*.h)')

# ---- 4. kernels are picked from the table ----
PICK = re.compile(r'\bempo_use_reference\s*\(|\bempo_(?:k|ref)_\w+\s*\(|\bempo_\w+_(?:cpu|ref)\s*\(')
for r in c_files('core'):
    text = re.sub(r'/\*.*?\*/', '', open(os.path.join(ROOT, r), encoding='utf-8').read(), flags=re.S)
    for m in PICK.finditer(text):
        line = text.count('\n', 0, m.start()) + 1
        fail(f'{r}:{line}: calls {m.group(0)[:-1].strip()} directly (use the kernel table: empo_kernels()->slot)')
for r in c_files('kernels'):
    if 'empo_use_reference' in open(os.path.join(ROOT, r), encoding='utf-8').read():
        fail(f'{r}: tests empo_use_reference() (the table is chosen in kernels/kernels.c only)')

# ---- 5. small files (pages too) ----
for path in walk_files():
    r = rel(path)
    if r.endswith(SOURCE_EXT + ('.md',)):
        n = sum(1 for _ in open(path, encoding='utf-8', errors='replace'))
        if n > MAX_LINES:
            fail(f'{r}: {n} lines (at most {MAX_LINES}: split it by topic)')

# ---- 6. named paths exist ----
PATH_REF = re.compile(r'(?<![\w/.$<-])((?:core|kernels|lua|tests|recipes|docs)/[\w/.{},-]*[\w/}])')
GENERATED = {'lua/empo/cdef.lua'}   # written into the build tree
# named by the docs before they land (the trainer, the arith world, more
# kernel tables): drop each from here when it exists
PLANNED = {'recipes/math.lua', 'recipes/arith/', 'kernels/avx512/', 'kernels/cuda/'}
TEXT_EXT = SOURCE_EXT + ('.md', '.txt', '.tsv', '.dict', '.json')
for path in walk_files():
    r = rel(path)
    if not (r.endswith(TEXT_EXT) or os.path.basename(r) in ('run', 'CMakeLists.txt')):
        continue
    text = open(path, encoding='utf-8', errors='replace').read()
    for m in PATH_REF.finditer(text):
        ref = m.group(1)
        alts = re.match(r'(.*)\{([^}]*,[^}]*)\}(.*)', ref)   # a{b,c}: both
        cands = [alts.group(1) + x + alts.group(3) for x in alts.group(2).split(',')] if alts else [ref]
        for c in cands:
            # file names (with an extension) and folders (a trailing /) only
            if '{' in c or not (c.endswith('/') or re.search(r'\.\w+$', c)) or c in GENERATED or c in PLANNED:
                continue
            if not os.path.exists(os.path.join(ROOT, c)):
                line = text.count('\n', 0, m.start()) + 1
                fail(f'{r}:{line}: names {c}, which does not exist')

for p in problems:
    print('layout: ' + p)
print(f'layout: {len(named)} folders in the map, {len(problems)} problems')
sys.exit(1 if problems else 0)
