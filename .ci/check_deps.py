#!/usr/bin/env python3
"""Offline dependency policy check: deny.toml's licence allow-list and duplicate-version bans.

The closest thing to `cargo deny check licenses bans` that works without building cargo-deny
(too slow to build from scratch on a 2-core CI machine) and without network: it reads
`cargo metadata --format-version 1 --locked` (every package the lock file resolves, all
targets, normal, build and dev dependencies) and checks

  * licences: each non-workspace package's SPDX expression must be satisfied by
    `[licenses] allow` (`A OR B`: one of them allowed, `A AND B`: both, `A WITH x`: the whole
    `A WITH x` id allowed, or `A` allowed; the old `A/B` spelling means `A OR B`); a package
    without a `license` field fails;
  * duplicates: a crate resolved in more than one version fails unless it is named in
    `[bans] skip`; a skip entry that no longer matches a duplicate is reported (stale policy).

RustSec advisories are not checked here (they need the advisory database; see .ci/run).
Usage: python3 .ci/check_deps.py [path/to/deny.toml]. Exit 1 on a violation.
"""

import collections
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path


def tokens(expr):
    expr = expr.replace("/", " OR ")
    return re.findall(r"\(|\)|[A-Za-z0-9.+\-]+", expr)


def satisfied(expr, allowed):
    """Whether the SPDX expression is satisfied by the allowed licence ids."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary():
        if peek() == "(":
            take()
            v = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
            return v
        lic = take()
        if peek() == "WITH":
            take()
            exception = take()
            return f"{lic} WITH {exception}" in allowed or lic in allowed
        return lic in allowed

    def conjunction():
        v = primary()
        while peek() == "AND":
            take()
            v = primary() and v
        return v

    def disjunction():
        v = conjunction()
        while peek() == "OR":
            take()
            v = conjunction() or v
        return v

    result = disjunction()
    if pos != len(toks):
        raise ValueError(f"cannot parse licence expression {expr!r}")
    return result


def main():
    root = Path(__file__).resolve().parent.parent
    policy_path = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "deny.toml"
    policy = tomllib.loads(policy_path.read_text())
    allowed = set(policy["licenses"]["allow"])
    skip = {e["name"] for e in policy.get("bans", {}).get("skip", [])}

    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(meta["workspace_members"])
    failures = []
    versions = collections.defaultdict(set)
    checked = 0
    for p in meta["packages"]:
        if p["id"] in members:
            continue
        checked += 1
        versions[p["name"]].add(p["version"])
        lic = p.get("license")
        where = f"{p['name']} {p['version']}"
        if not lic:
            failures.append(f"licence: {where} declares no SPDX licence")
            continue
        try:
            ok = satisfied(lic, allowed)
        except (ValueError, IndexError) as e:
            failures.append(f"licence: {where}: {e}")
            continue
        if not ok:
            failures.append(f"licence: {where} is {lic!r}, not allowed by {policy_path.name}")

    dups = {n: sorted(v) for n, v in versions.items() if len(v) > 1}
    for name, vs in sorted(dups.items()):
        line = f"{name}: {', '.join(vs)}"
        if name in skip:
            print(f"duplicate (allowed in [bans] skip): {line}")
        else:
            failures.append(f"duplicate: {line} (converge the versions or add it to [bans] skip)")
    for name in sorted(skip - dups.keys()):
        print(f"note: [bans] skip names {name}, which is no longer duplicated; remove it")

    print(
        f"{checked} dependencies checked: licences against {len(allowed)} allowed ids, "
        f"{len(dups)} crates in more than one version ({len(dups.keys() - skip)} not allowed)"
    )
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
