"""Closed-world logic puzzles in the Tianchi format, generated from a hidden world.

A puzzle *spec* is plain JSON (so a dropped one can be written out and read back)::

    {"id", "kind": "ranking" | "west" | "courses", "names": {group: [name, ...]},
     "n": slots (ranking/west), "facts": [[relation, i, j], ...],
     "problem": Chinese text, "questions": [{"question", "options": [...], "conds": [cond, ...]}]}

Entities are indices into ``names``. Questions are unnumbered: the ``选择题 k：`` prefix is added
when a problem is written (:func:`preprocess.augment_logic.verify`), after undecided ones are dropped. ``conds[i]`` is the logical condition under which option
``i`` is true; the answer is NOT stored here: :mod:`preprocess.logic_solvers` derives it, once with
python-constraint and once with clingo, and :mod:`preprocess.augment_logic` keeps a puzzle only
where both agree. Closed-world assumption (as in the Tianchi round's problems): a relation that
does not follow from the facts is false.

Families, each worded like the Tianchi round-1 problems (``round1_train_data.jsonl``):
    ranking  N people take places 1..N; facts ``at`` (p is k-th), ``not_at``, ``before``
             (p ranks ahead of q); facts are added until exactly one ranking fits.
    west     cities, facts ``west`` (a is directly west of b); "west of" is the transitive closure.
    courses  professors teach courses, students attend courses; ``teacher_of(p, s)`` holds when
             p teaches a course s attends.

Conditions: ``["at", p, k]``, ``["before", p, q]``, ``["west", a, b]``, ``["teacher_of", p, s]``,
``["not", cond]``.
"""
from __future__ import annotations

import random

from .logic_solvers import count_rankings

KINDS = ("ranking", "west", "courses")
_PEOPLE = ["Alan", "John", "Steve", "Kev", "Mary", "Lucy", "Tom", "Anna", "Bob", "Emma"]
_CITIES = ["温莎", "伦敦", "汉密尔顿", "密西沙加", "多伦多", "金斯顿", "渥太华", "旺市", "马克翰", "基奇纳"]
_PROFS = ["Holvoet", "Moens", "Demoen", "Dedecker", "Jacobs", "Deschreye"]
_COURSES = ["BVP", "SWOP", "FI", "AI", "SOCS", "DB"]
_STUDENTS = ["Joachim", "Matthias", "Thomas", "Ingmar", "Sofie", "Lotte"]
_ORDINALS = ["第一", "第二", "第三", "第四", "第五", "第六"]
YES_NO = ["是", "否"]


def generate(n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """Return ``n`` puzzle specs, the kinds in turn; the same ``seed`` gives the same specs.

    Raises:
        ValueError: ``n`` < 0 or an unknown kind.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise ValueError(f"unknown puzzle kinds {sorted(unknown)}; expected some of {KINDS}")
    rng = random.Random(seed)
    makers = {"ranking": _ranking, "west": _west, "courses": _courses}
    specs = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        spec = makers[kind](rng)
        spec["id"] = f"aug_{seed}_{i:05d}_{kind}"
        specs.append(spec)
    return specs


def _ranking(rng: random.Random) -> dict:
    n = rng.randint(3, 5)
    people = rng.sample(_PEOPLE, n)
    place = list(range(n))
    rng.shuffle(place)  # place[p] = 0-based place of person p in the hidden ranking
    candidates = ([["not_at", p, k] for p in range(n) for k in range(n) if place[p] != k]
                  + [["before", p, q] for p in range(n) for q in range(n) if place[p] < place[q]]
                  + [["at", p, place[p]] for p in range(n)])
    rng.shuffle(candidates)
    candidates.sort(key=lambda f: f[0] == "at")  # "at" facts last: they make puzzles trivial
    facts: list[list] = []
    for fact in candidates:
        facts.append(fact)
        if count_rankings(n, facts, limit=2) == 1:  # facts until one ranking fits
            break
    rng.shuffle(facts)
    lines = []
    for rel, a, b in facts:
        if rel == "at":
            lines.append(f"{people[a]} 名列{_ORDINALS[b]}。")
        elif rel == "not_at":
            lines.append(f"{people[a]} 不是{_ORDINALS[b]}名。")
        else:
            lines.append(f"{people[a]} 的名次排在 {people[b]} 前面。")
    problem = (f"在一场比赛中，{n} 位选手{'、'.join(people)}分别取得了"
               f"{'、'.join(o + '名' for o in _ORDINALS[:n])}，没有并列。已知：\n\n"
               + "\n".join(f"{i}. {t}" for i, t in enumerate(lines, 1))
               + "\n\n根据以上信息，回答以下选择题：")
    k = rng.randrange(n)
    p, q = rng.sample(range(n), 2)
    order = rng.sample(range(n), n)
    questions = [
        {"question": f"谁是{_ORDINALS[k]}名？", "options": [people[i] for i in order],
         "conds": [["at", i, k] for i in order]},
        {"question": f"{people[p]} 是第几名？", "options": [o + "名" for o in _ORDINALS[:n]],
         "conds": [["at", p, j] for j in range(n)]},
        {"question": f"{people[p]} 的名次是否在 {people[q]} 前面？", "options": YES_NO,
         "conds": [["before", p, q], ["not", ["before", p, q]]]},
    ]
    return {"kind": "ranking", "names": {"people": people}, "n": n, "facts": facts, "problem": problem,
            "questions": questions}


def _west(rng: random.Random) -> dict:
    n = rng.randint(5, 7)
    cities = rng.sample(_CITIES, n)  # hidden west-to-east order: index order
    facts = [["west", i, i + 1] for i in range(n - 1) if rng.random() < 0.75]
    if not facts:
        facts = [["west", 0, 1]]
    rng.shuffle(facts)
    order = rng.sample(range(n), n)
    names = [cities[i] for i in order]
    facts = [[rel, order.index(a), order.index(b)] for rel, a, b in facts]  # indices into names
    problem = ("下面是一些城市之间位置关系的信息。如果甲在乙的西边、乙在丙的西边，那么甲也在丙的西边；"
               "除此之外没有给出的位置关系都视为不成立。\n\n"
               + "\n".join(f"- {names[a]}在{names[b]}的西边。" for _, a, b in facts)
               + "\n\n根据以上信息，回答以下选择题：")
    _, a, b = rng.choice(facts)  # a city b has directly to its west, plus three that are not west of b
    east_of_b = [c for c in range(n) if order[c] > order[b]]
    others = rng.sample([c for c in range(n) if c not in (a, b)], min(3, n - 2))
    pool = ([a] + rng.sample(east_of_b, min(3, len(east_of_b))) + others)[:4]
    pool = list(dict.fromkeys(pool))
    rng.shuffle(pool)
    x, y = rng.sample(range(n), 2)
    questions = [
        {"question": f"以下哪个城市在{names[b]}的西边？", "options": [names[c] for c in pool],
         "conds": [["west", c, b] for c in pool]},
        {"question": f"{names[x]}是否在{names[y]}的西边？", "options": YES_NO,
         "conds": [["west", x, y], ["not", ["west", x, y]]]},
    ]
    return {"kind": "west", "names": {"cities": names}, "n": n, "facts": facts, "problem": problem,
            "questions": questions}


def _courses(rng: random.Random) -> dict:
    profs, courses, students = rng.sample(_PROFS, 4), rng.sample(_COURSES, 5), rng.sample(_STUDENTS, 4)
    teaches = sorted({(rng.randrange(4), c) for c in range(5)} | {(p, rng.randrange(5)) for p in range(4)})
    attends = sorted({(s, c) for s in range(4) for c in rng.sample(range(5), rng.randint(1, 2))})
    facts = [["teaches", p, c] for p, c in teaches] + [["attends", s, c] for s, c in attends]

    def listing(pairs, owner_names, kind):
        by = {}
        for o, c in pairs:
            by.setdefault(o, []).append(courses[c])
        return [f"{owner_names[o]}{kind}：{'、'.join(cs)}。" for o, cs in sorted(by.items())]

    problem = ("有一所大学，部分教授和学生的信息如下（未列出的授课和选课都不存在）：\n\n"
               + "\n".join(f"{i}. {t}" for i, t in enumerate(listing(teaches, profs, "教授授课课程"), 1))
               + "\n\n以下学生参加的课程情况：\n\n"
               + "\n".join(f"{i}. {t}" for i, t in enumerate(listing(attends, students, "同学参加的课程"), 1))
               + "\n\n请根据信息回答以下选择题：")
    s = rng.randrange(4)
    p = rng.randrange(4)
    order = rng.sample(range(4), 4)
    questions = [
        {"question": f"以下哪位教授是{students[s]}同学的老师（教授了该同学参加的某门课程）？",
         "options": [profs[i] for i in order], "conds": [["teacher_of", i, s] for i in order]},
        {"question": f"{profs[p]}教授是否是{students[s]}同学的老师？", "options": YES_NO,
         "conds": [["teacher_of", p, s], ["not", ["teacher_of", p, s]]]},
    ]
    return {"kind": "courses", "names": {"profs": profs, "courses": courses, "students": students},
            "facts": facts, "problem": problem, "questions": questions}
