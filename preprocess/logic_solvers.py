"""Answers of :mod:`preprocess.logic_puzzles` specs, derived twice by independent solvers.

:func:`csp_answers` models the world as a finite-domain CSP in python-constraint (places or
west-east positions as variables, all different) and takes a condition as true when it holds in
EVERY solution; "west of" is thus read off all orders consistent with the facts, and
``teacher_of`` is a search for a shared course. :func:`asp_answers` writes the facts and
conditions as an answer-set program for clingo (choice rule for rankings, recursive rule for
"west of", a join for ``teacher_of``) and reads the options true in its single answer set.
Both apply the closed-world assumption: what does not follow is false, so ``["not", c]`` holds
when ``c`` does not follow.

A question's answer is the letter of its only true option; ``None`` when no option or several are
true, or when a ranking puzzle does not fix exactly one ranking.
"""
from __future__ import annotations

import itertools
import string

import clingo
import constraint

_LETTERS = string.ascii_uppercase


def _ranking_problem(n: int, facts: list) -> constraint.Problem:
    problem = constraint.Problem()
    problem.addVariables(range(n), range(n))
    problem.addConstraint(constraint.AllDifferentConstraint())
    for rel, a, b in facts:
        if rel == "at":
            problem.addConstraint(constraint.InSetConstraint([b]), [a])
        elif rel == "not_at":
            problem.addConstraint(constraint.NotInSetConstraint([b]), [a])
        elif rel == "before":
            problem.addConstraint(lambda x, y: x < y, [a, b])
        else:
            raise ValueError(f"unknown ranking fact {rel!r}")
    return problem


def count_rankings(n: int, facts: list, limit: int | None = None) -> int:
    """Number of rankings of ``n`` people (places 0..n-1, all different) that satisfy ``facts``
    (``[["at"|"not_at"|"before", i, j], ...]``), counting at most ``limit``."""
    return sum(1 for _ in itertools.islice(_ranking_problem(n, facts).getSolutionIter(), limit))


def _csp_worlds(spec: dict) -> list[dict]:
    if spec["kind"] == "ranking":
        return list(itertools.islice(_ranking_problem(spec["n"], spec["facts"]).getSolutionIter(), 2))
    if spec["kind"] == "west":
        problem = constraint.Problem()
        problem.addVariables(range(spec["n"]), range(spec["n"]))
        problem.addConstraint(constraint.AllDifferentConstraint())
        for _, a, b in spec["facts"]:
            problem.addConstraint(lambda x, y: x < y, [a, b])
        return problem.getSolutions()
    return [{}]  # courses: the facts are the one world


def _csp_holds(spec: dict, cond: list, world: dict) -> bool:
    rel = cond[0]
    if rel == "at":
        return world[cond[1]] == cond[2]
    if rel in ("before", "west"):
        return world[cond[1]] < world[cond[2]]
    if rel == "teacher_of":
        teaches = {(p, c) for r, p, c in spec["facts"] if r == "teaches"}
        attends = {(s, c) for r, s, c in spec["facts"] if r == "attends"}
        problem = constraint.Problem()
        problem.addVariable("course", range(len(spec["names"]["courses"])))
        problem.addConstraint(lambda c: (cond[1], c) in teaches and (cond[2], c) in attends, ["course"])
        return problem.getSolution() is not None
    raise ValueError(f"unknown condition {cond!r}")


def _letter(truth: list[bool]) -> str | None:
    true = [i for i, t in enumerate(truth) if t]
    return _LETTERS[true[0]] if len(true) == 1 else None


def csp_answers(spec: dict) -> list[str | None]:
    """Answer letter per question of ``spec``, by python-constraint (see the module docstring)."""
    worlds = _csp_worlds(spec)
    if not worlds or (spec["kind"] == "ranking" and len(worlds) != 1):
        return [None] * len(spec["questions"])

    def entailed(cond: list) -> bool:
        if cond[0] == "not":
            return not entailed(cond[1])
        return all(_csp_holds(spec, cond, w) for w in worlds)

    return [_letter([entailed(c) for c in q["conds"]]) for q in spec["questions"]]


_ASP_WORLD = {
    "ranking": ("place(0..{m}). person(0..{m}).\n"
                "1 { rank(P, K) : place(K) } 1 :- person(P).\n"
                ":- rank(P1, K), rank(P2, K), P1 != P2.\n"),
    "west": "west(A, B) :- west_fact(A, B).\nwest(A, C) :- west(A, B), west_fact(B, C).\n",
    "courses": "teacher_of(P, S) :- teaches(P, C), attends(S, C).\n",
}
_ASP_FACT = {"at": ":- not rank({0}, {1}).", "not_at": ":- rank({0}, {1}).",
             "before": ":- rank({0}, K1), rank({1}, K2), K1 >= K2.", "west": "west_fact({0}, {1}).",
             "teaches": "teaches({0}, {1}).", "attends": "attends({0}, {1})."}
_ASP_BODY = {"at": "rank({0}, {1})", "before": "rank({0}, K1), rank({1}, K2), K1 < K2",
             "west": "west({0}, {1})", "teacher_of": "teacher_of({0}, {1})"}


def asp_program(spec: dict) -> str:
    """The answer-set program of ``spec``: world rules, facts, and ``opt(Q, I)`` for each true option."""
    lines = [_ASP_WORLD[spec["kind"]].replace("{m}", str(spec.get("n", 1) - 1))]
    lines += [_ASP_FACT[rel].format(a, b) for rel, a, b in spec["facts"]]
    for q, question in enumerate(spec["questions"]):
        for i, cond in enumerate(question["conds"]):
            if cond[0] == "not":  # closed world: default negation of the inner condition
                lines.append(f"pos({q}, {i}) :- {_ASP_BODY[cond[1][0]].format(*cond[1][1:])}.")
                lines.append(f"opt({q}, {i}) :- not pos({q}, {i}).")
            else:
                lines.append(f"opt({q}, {i}) :- {_ASP_BODY[cond[0]].format(*cond[1:])}.")
    return "\n".join(lines) + "\n#show opt/2.\n"


def asp_answers(spec: dict) -> list[str | None]:
    """Answer letter per question of ``spec``, by clingo (see the module docstring)."""
    control = clingo.Control(["0", "--warn=none"])
    control.add("base", [], asp_program(spec))
    control.ground([("base", [])])
    models: list[set] = []
    with control.solve(yield_=True) as handle:
        for model in handle:
            models.append({tuple(a.number for a in sym.arguments) for sym in model.symbols(shown=True)})
            if len(models) > 1:
                break
    if len(models) != 1:
        return [None] * len(spec["questions"])
    return [_letter([(q, i) in models[0] for i in range(len(question["conds"]))])
            for q, question in enumerate(spec["questions"])]
