#!/usr/bin/python3
"""check_sympy.py — SymPy double-checks the labels of tests/cluster/equivalence.tsv.

    /usr/bin/python3 tests/cluster/check_sympy.py [equivalence.tsv]

For every case whose two sides this script can turn into SymPy objects, it
decides equivalence with SymPy alone and compares with the label. The
translation is independent of empo's C parser: a small LaTeX-to-SymPy
rewrite (\\frac, \\sqrt, \\log_b, functions, |x|, braces) handed to
sympy.parse_expr, plus tuples, intervals, sets, unions, "x = ..." and
one-variable inequalities built as SymPy objects.

Skipped, and counted as skipped:
  * categories that are conventions rather than mathematics (plain text,
    choice letters, percent, units, degrees, thousands separators, mixed
    numbers, what a label before = means) -- SymPy has no opinion on them;
  * sides using notation this translator does not cover (\\text, \\pm, words, matrices,
    non-ASCII, a bare multi-digit exponent such as 2^10, which LaTeX and
    plain text read differently).

Equivalence in SymPy: two exact rationals (integers of any size, fractions)
are equal only when they are the same number; otherwise simplify(a - b) == 0,
else numerically at fixed points for the free symbols (real) with relative
tolerance 1e-6 when a decimal (a SymPy Float) is written in either side and
1e-10 when none is (the rounding of an evaluation, not of an answer) --
the tolerances the labels are written for. Exits 1 on any
disagreement, or when fewer than MIN_CHECKED cases could be checked.
"""
import os
import re
import sys

import sympy as sp
from sympy.parsing.sympy_parser import (convert_xor, implicit_multiplication_application, parse_expr,
                                        standard_transformations)

MIN_CHECKED = 200
RTOL, FLOOR = 1e-6, 1e-6
CONVENTIONS = {'text', 'choice', 'percent', 'units', 'degree', 'thousands', 'mixed', 'label', 'capital_label',
               'sum_form'}
TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)

GREEK = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda',
         'mu', 'nu', 'xi', 'rho', 'sigma', 'tau', 'phi', 'chi', 'psi', 'omega']
NAMES = {c: sp.Symbol(c, real=True) for c in 'abcdfghijklmnopqrstuvwxyzABCDFGHIJKLMNOPQRSTUVWXYZ'}
NAMES.update({'G_' + g: sp.Symbol(g, real=True) for g in GREEK})
NAMES.update({'e': sp.E, 'pi': sp.pi, 'oo': sp.oo, 'sqrt': sp.sqrt, 'root': sp.real_root, 'log': sp.log,
              'exp': sp.exp, 'sin': sp.sin, 'cos': sp.cos, 'tan': sp.tan, 'asin': sp.asin, 'acos': sp.acos,
              'atan': sp.atan, 'sinh': sp.sinh, 'cosh': sp.cosh, 'tanh': sp.tanh, 'sec': sp.sec, 'csc': sp.csc,
              'cot': sp.cot, 'Abs': sp.Abs, 'binomial': sp.binomial, 'factorial': sp.factorial})
FUNCS = {'sin': 'sin', 'cos': 'cos', 'tan': 'tan', 'sec': 'sec', 'csc': 'csc', 'cot': 'cot', 'arcsin': 'asin',
         'arccos': 'acos', 'arctan': 'atan', 'sinh': 'sinh', 'cosh': 'cosh', 'tanh': 'tanh', 'ln': 'log',
         'log': 'log', 'exp': 'exp'}


class Skip(Exception):
    pass


# ---- LaTeX -> a SymPy expression string ----

def group(s, i):
    """The argument at s[i]: a {group}, or one character. Returns (text, next index)."""
    while i < len(s) and s[i] == ' ':
        i += 1
    if i >= len(s):
        raise Skip('missing argument')
    if s[i] == '{':
        depth = 0
        for j in range(i, len(s)):
            depth += {'{': 1, '}': -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1:j], j + 1
        raise Skip('unbalanced')
    if s[i] == '\\':
        m = re.match(r'\\[a-zA-Z]+', s[i:])
        if m:
            return m.group(0), i + len(m.group(0))
    return s[i], i + 1


def fn_argument(s, i):
    """What a function applies to: (..), {..}, or the product that follows (sin 2x)."""
    while i < len(s) and s[i] == ' ':
        i += 1
    if i < len(s) and s[i] in '({':
        close = ')' if s[i] == '(' else '}'
        depth = 0
        for j in range(i, len(s)):
            depth += 1 if s[j] == s[i] else -1 if s[j] == close else 0
            if depth == 0:
                return s[i + 1:j], j + 1
        raise Skip('unbalanced')
    m = re.match(r'[0-9.]*[a-zA-Z]*(\^\{[^{}]*\}|\^[0-9a-zA-Z])?', s[i:])
    if not m or not m.group(0):
        raise Skip('function argument')
    return m.group(0), i + len(m.group(0))


def latex(s):
    """A SymPy-parsable string for one scalar LaTeX expression."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == '\\':
            m = re.match(r'\\([a-zA-Z]+)', s[i:])
            if not m:
                raise Skip('escape ' + s[i:i + 2])
            name, i = m.group(1), i + len(m.group(0))
            if name in ('frac', 'dfrac', 'tfrac', 'cfrac', 'binom'):
                a, i = group(s, i)
                b, i = group(s, i)
                out.append(f'(({latex(a)})/({latex(b)}))' if name != 'binom' else f'binomial({latex(a)},{latex(b)})')
            elif name == 'sqrt':
                if i < len(s) and s[i] == '[':
                    j = s.index(']', i)
                    n, i = s[i + 1:j], j + 1
                    a, i = group(s, i)
                    out.append(f'root({latex(a)},{latex(n)})')
                else:
                    a, i = group(s, i)
                    out.append(f'sqrt({latex(a)})')
            elif name in FUNCS:
                base = None
                if name == 'log' and i < len(s) and s[i] == '_':
                    base, i = group(s, i + 1)
                power = None
                if i < len(s) and s[i] == '^':
                    power, i = group(s, i + 1)
                arg, i = fn_argument(s, i)
                f = f'{FUNCS[name]}({latex(arg)})' if base is None else f'log({latex(arg)},{latex(base)})'
                out.append(f'({f})**({latex(power)})' if power else f'({f})')
            elif name == 'pi':
                out.append(' pi ')
            elif name == 'infty':
                out.append(' oo ')
            elif name in ('cdot', 'times'):
                out.append('*')
            elif name == 'div':
                out.append('/')
            elif name in GREEK:
                out.append(' G_' + name + ' ')
            elif name == 'sum':       # \sum_{k=a}^{b} the rest: a SymPy Sum
                if not s.startswith('_', i):
                    raise Skip('sum without bounds')
                bounds, i = group(s, i + 1)
                if not s.startswith('^', i):
                    raise Skip('sum without an upper bound')
                upper, i = group(s, i + 1)
                var, _, lower = bounds.partition('=')
                if not re.fullmatch(r'[a-zA-Z]', var.strip()):
                    raise Skip('sum bounds')
                out.append(f'Sum({latex(s[i:])}, ({var.strip()}, {latex(lower)}, {latex(upper)}))')
                i = len(s)
            elif name in ('left', 'right', 'bigl', 'bigr', 'quad'):
                if i < len(s) and s[i] == '.':
                    i += 1
            else:
                raise Skip('command \\' + name)
        elif c == '{':
            body, i = group(s, i)
            out.append('(' + latex(body) + ')')
        elif c == '|':
            j = s.find('|', i + 1)
            if j < 0:
                raise Skip('unbalanced |')
            out.append('Abs(' + latex(s[i + 1:j]) + ')')
            i = j + 1
        elif c.isdigit() or (c == '.' and s[i + 1:i + 2].isdigit()):
            m = re.match(r'\d*\.?\d+([eE][+-]?\d+)?', s[i:])
            out.append(' ' + (m.group(0).lstrip('0') or '0').replace('e', 'E') + ' ')
            if out[-1].strip().startswith('.') or out[-1].strip().startswith('E'):
                out[-1] = ' 0' + out[-1].strip() + ' '
            i += len(m.group(0))
        elif c.isalpha():
            m = re.match(r'[a-zA-Z]+', s[i:])
            word = m.group(0)
            if word in ('sqrt', 'pi'):
                out.append(' ' + word + ' ')
            elif word == 'infinity':
                out.append(' oo ')
            elif len(word) > 2:
                raise Skip('word ' + word)
            else:
                out.append(' ' + ' '.join(word) + ' ')
            i += len(word)
            if i < len(s) and s[i] == '_':     # a subscripted symbol: one name (F_{n-k-1} is F_nmkm1)
                sub, i = group(s, i + 1)
                sub = re.sub(r'[^A-Za-z0-9]', lambda m: {'-': 'm', '+': 'p'}.get(m.group(0), '_'), sub)
                out[-1] = out[-1].rstrip() + '_' + sub + ' '
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def scalar(s):
    s = s.strip()
    if not s:
        raise Skip('empty')
    text = latex(s)
    try:
        return parse_expr(text, local_dict=dict(NAMES), transformations=TRANSFORMS, evaluate=True)
    except Exception as ex:  # noqa: BLE001 - any parse failure means "SymPy cannot read it"
        raise Skip(f'parse {text!r}: {ex}') from None


# ---- structure: tuples, intervals, sets, unions, x = ..., inequalities ----

def split_top(s, sep=','):
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if s.startswith('\\{', i) or s.startswith('\\left', i) and False:
            depth += 1
            i += 2
            continue
        if s.startswith('\\}', i):
            depth -= 1
            i += 2
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def split_relations(s):
    """s cut at its relation signs outside braces (so \\sum_{k=0} keeps its =), the signs kept."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in '{':
            depth += 1
        elif c in '}':
            depth -= 1
        elif depth == 0 and c in '<>=':
            op = s[i:i + 2] if s[i:i + 2] in ('<=', '>=') else c
            parts += [s[start:i], op]
            i += len(op)
            start = i
            continue
        i += 1
    return parts + [s[start:]]


def matching(s, i):
    depth = 0
    for j in range(i, len(s)):
        if s[j] in '([':
            depth += 1
        elif s[j] in ')]':
            depth -= 1
            if depth == 0:
                return j
    return -1


def clean(s):
    s = s.strip().strip('$').strip()
    for a, b in (('\\left', ''), ('\\right', ''), ('\\bigl', ''), ('\\bigr', ''), ('\\,', ''), ('\\!', ''),
                 ('\\;', ''), ('\\quad', ' '), ('\\(', ''), ('\\)', ''), ('\\[', ''), ('\\]', ''), ('\\geq', '>='),
                 ('\\ge', '>='), ('\\leq', '<='), ('\\le', '<='), ('\\boxed', ''), ('\\cup', ' U '),
                 ('\\emptyset', '\\{\\}'), ('\\varnothing', '\\{\\}')):
        s = s.replace(a, b)
    s = re.sub(r'\s+', ' ', s).strip()
    if s.endswith('.'):
        s = s[:-1]
    return s


def value(s):
    """('scalar', expr) | ('tuple', open, [values], close) | ('set', [values]) | ('rel', op, a, b)."""
    s = s.strip()
    solutions = [x for x in split_top(s, ';') if x]
    if len(solutions) > 1:      # p=5,q=2; p=7,q=2: the set of the solutions
        return ('set', [value(x) for x in solutions])
    s = solutions[0] if solutions else s     # a trailing ; ends the one solution
    if ':' in s:      # a ratio a:b:c, or names' ratio = numbers' ratio
        sides = split_top(s, '=')
        if len(sides) == 2 and all(re.fullmatch(r'[A-Za-z](_\{?\w+\}?)?', n.strip()) for n in split_top(sides[0], ':')):
            return ('label', split_top(sides[0], ':'), value(sides[1]))
        return ('ratio', [scalar(t) for t in split_top(s, ':')])
    parts = split_top(s)
    if len(parts) > 1:
        named = [re.match(r'^([a-zA-Z](_\w+)?)\s*=\s*(.+)$', p) for p in parts]
        if all(named):     # x = 1, y = 2: a solution, compared name by name
            return ('set', [('pair', m.group(1), value(m.group(3))) for m in named])
        items = [value(p) for p in parts]
        if all(re.search(r'[<>]', p) for p in parts):     # x < -1, x > 1 ("... or ..."): the union of the solutions
            return ('union', items)
        return ('set', items)
    m = re.match(r'^([a-zA-Z](_\w+)?|[a-zA-Z]\([a-zA-Z]\)|\(\s*[a-zA-Z](\s*,\s*[a-zA-Z])+\s*\))\s*(=|\\in)\s*(.+)$', s)
    if m:      # x = 3, f(x) = ..., (x, y) = ...: the right side
        return value(m.group(5))
    pieces = split_top(s, ' U ')
    if len(pieces) > 1:
        return ('union', [value(p) for p in pieces])
    if s.startswith('\\{') and s.endswith('\\}'):
        inner = s[2:-2].strip()
        return ('set', [value(p) for p in split_top(inner)] if inner else [])
    if s and s[0] in '([' and matching(s, 0) == len(s) - 1:
        inner = split_top(s[1:-1])
        if len(inner) > 1:
            return ('tuple', s[0], [value(p) for p in inner], s[-1])
    rel = split_relations(s)
    if len(rel) == 3:
        return relation(rel[0], rel[1], rel[2])
    if len(rel) == 5:
        lo, op1, x, op2, hi = rel
        if op1 == op2[0] == '<' or (op1[0] == op2[0] == '<'):
            if re.fullmatch(r'\s*[a-zA-Z]\s*', x):
                return ('tuple', '(' if op1 == '<' else '[', [('scalar', scalar(lo)), ('scalar', scalar(hi))],
                        ')' if op2 == '<' else ']')
        raise Skip('chain')
    return ('scalar', scalar(s))


def relation(a, op, b):
    if op in ('>', '>='):
        a, b, op = b, a, op.replace('>', '<')
    var_a, var_b = re.fullmatch(r'\s*[a-zA-Z]\s*', a), re.fullmatch(r'\s*[a-zA-Z]\s*', b)
    if op != '=' and var_a:
        return ('tuple', '(', [('scalar', -sp.oo), ('scalar', scalar(b))], ')' if op == '<' else ']')
    if op != '=' and var_b:
        return ('tuple', '(' if op == '<' else '[', [('scalar', scalar(a)), ('scalar', sp.oo)], ')')
    sa, sb = scalar(a), scalar(b)
    f = sa - sb
    if op != '=' and len(f.free_symbols) == 1:     # linear in one variable: the interval it solves to
        x = next(iter(f.free_symbols))
        poly = sp.Poly(sp.expand(f), x) if f.is_polynomial(x) else None
        if poly is not None and poly.degree() == 1:
            c1, c0 = poly.all_coeffs()
            root = -c0 / c1
            if c1 > 0:
                return ('tuple', '(', [('scalar', -sp.oo), ('scalar', root)], ')' if op == '<' else ']')
            return ('tuple', '(' if op == '<' else '[', [('scalar', root), ('scalar', sp.oo)], ')')
    return ('rel', op, ('scalar', sa), ('scalar', sb))


# ---- equivalence in SymPy ----

POINTS = [0.7236, 1.3319, 2.1577, 0.4113, 1.8903, -0.6271, -1.5557, -2.2811]


TIGHT_RTOL, TIGHT_FLOOR = RTOL * 1e-4, 1e-3


def close(x, y, rtol=RTOL, floor=FLOOR):
    if x == y:
        return True
    if not (abs(x) < float('inf') and abs(y) < float('inf')):
        return False
    return abs(x - y) <= rtol * max(abs(x), abs(y), floor)


def scalar_equal(a, b):
    if a.has(sp.oo) or b.has(sp.oo) or a.has(-sp.oo) or b.has(-sp.oo):
        return sp.simplify(a) == sp.simplify(b)
    decimal = a.has(sp.Float) or b.has(sp.Float)
    if not decimal and a.is_Rational and b.is_Rational:
        return a == b
    if sp.simplify(a - b) == 0:
        return True
    rtol, floor = (RTOL, FLOOR) if decimal else (TIGHT_RTOL, TIGHT_FLOOR)
    syms = sorted(a.free_symbols | b.free_symbols, key=str)
    defined = 0
    for k, base in enumerate(POINTS):
        subs = {x: base * (1 + 0.173 * j) for j, x in enumerate(syms)}
        try:
            va, vb = complex(sp.N(a.subs(subs))), complex(sp.N(b.subs(subs)))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if abs(va.imag) > 1e-12 or abs(vb.imag) > 1e-12:
            continue
        if not close(va.real, vb.real, rtol, floor):
            return False
        defined += 1
        if not syms:
            break
    return defined >= (1 if not syms else 3)


def proportional(x, y):
    """lhs - rhs of one relation is a nonzero constant times the other's
    (a positive one for inequalities), the relations having variables."""
    if x[1] != y[1] or x[2][0] != 'scalar' or y[2][0] != 'scalar':
        return False
    fx, fy = x[2][1] - x[3][1], y[2][1] - y[3][1]
    if not (fx.free_symbols and fy.free_symbols) or fy == 0:
        return False
    c = sp.simplify(fx / fy)
    return c.is_number and c != 0 and (x[1] == '=' or bool(c > 0))


def point(x):
    """The coordinates of a named list with distinct names (x = 2, y = -1), in the order of the names."""
    if x[0] != 'set' or not x[1] or any(v[0] != 'pair' for v in x[1]) or len({v[1] for v in x[1]}) != len(x[1]):
        return None
    return [v[2] for v in sorted(x[1], key=lambda v: v[1])]


def ratio_equal(a, b):
    """Same length, and one a positive multiple of the other."""
    if len(a) != len(b) or b[0] == 0:
        return False
    c = sp.nsimplify(a[0] / b[0]) if not (a[0].has(sp.Float) or b[0].has(sp.Float)) else a[0] / b[0]
    return bool(c > 0) and all(scalar_equal(u, c * v) for u, v in zip(a, b))


def equal(x, y):
    if x[0] == 'label' and y[0] == 'label':      # two labelled ratios: the same names, then the values
        return [n.strip() for n in x[1]] == [n.strip() for n in y[1]] and equal(x[2], y[2])
    if x[0] == 'label':
        return equal(x[2], y)
    if y[0] == 'label':
        return equal(x, y[2])
    if x[0] == 'ratio' or y[0] == 'ratio':
        return x[0] == y[0] and ratio_equal(x[1], y[1])
    for p, t in ((x, y), (y, x)):      # a point written by its coordinates against a tuple (2, -1)
        coords = point(p)
        if coords is not None and t[0] == 'tuple':
            return (t[1], t[3], len(t[2])) == ('(', ')', len(coords)) and all(equal(a, b) for a, b in zip(coords, t[2]))
    if x[0] != y[0]:
        return False
    if x[0] == 'scalar':
        return scalar_equal(x[1], y[1])
    if x[0] == 'tuple':
        return (x[1], x[3], len(x[2])) == (y[1], y[3], len(y[2])) and all(equal(a, b) for a, b in zip(x[2], y[2]))
    if x[0] in ('set', 'union'):
        return all(any(equal(a, b) for b in y[1]) for a in x[1]) and all(any(equal(b, a) for a in x[1]) for b in y[1])
    if x[0] == 'pair':
        return x[1] == y[1] and equal(x[2], y[2])
    if x[0] == 'rel':
        same = x[1] == y[1] and equal(x[2], y[2]) and equal(x[3], y[3])
        return same or (x[1] == y[1] == '=' and equal(x[2], y[3]) and equal(x[3], y[2])) or proportional(x, y)
    return False


def translate(s):
    if any(ord(c) > 127 for c in s):
        raise Skip('non-ASCII')
    if '\\begin' in s or '&' in s:
        raise Skip('matrix')
    for marker in ('\\text', '\\mbox', '\\mathrm', '\\mathbf', '\\textbf', '\\operatorname', '\\pm', '%', '\\circ',
                   '\\degree', '{,}', '\\$'):
        if marker in s:
            raise Skip(marker)
    if re.search(r'\^\d\d', s):
        raise Skip('bare multi-digit exponent')
    if re.search(r'\d \d', s):
        raise Skip('digit groups')
    if re.fullmatch(r'\s*[A-Za-z ]{2,}\.?\s*', s):
        raise Skip('words')
    return value(clean(s))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               'equivalence.tsv')
    checked, agree, skipped, bad = 0, 0, {}, []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line or line.startswith('#'):
                continue
            label, category, a, b = line.split('\t')
            if category in CONVENTIONS:
                skipped['convention: ' + category] = skipped.get('convention: ' + category, 0) + 1
                continue
            try:
                x, y = translate(a), translate(b)
                verdict = equal(x, y)
            except Skip as why:
                key = str(why).split(':')[0].split(' ')[0]
                skipped[key] = skipped.get(key, 0) + 1
                continue
            checked += 1
            if verdict == (label == '='):
                agree += 1
            else:
                bad.append(f'  [{category}] {a!r} vs {b!r}: label {label}, SymPy says {"=" if verdict else "!"}')
    print(f'check_sympy: {checked} cases checked, {agree} agree, {len(bad)} disagree, '
          f'{sum(skipped.values())} skipped')
    for why, n in sorted(skipped.items(), key=lambda kv: -kv[1]):
        print(f'  skipped {n:3d}: {why}')
    for b in bad:
        print(b)
    if bad or checked < MIN_CHECKED:
        if checked < MIN_CHECKED:
            print(f'check_sympy: only {checked} cases checked (want >= {MIN_CHECKED})')
        sys.exit(1)


if __name__ == '__main__':
    main()
