"""Does the audit recover what the simulated world knows? Checks for summary.json.

On simulated platforms the truth is configured: personalising platforms narrow a fresh
feed, the non-personalised one does not, a frozen one (or a null one) barely follows a
reversed persona, and BEP grows with responsiveness. An audit instrument that cannot see
these on the simulator cannot be trusted on a real platform.
"""

from __future__ import annotations


def _adaptive(profile: dict) -> bool:
    return profile["personalization"] > 0 and profile["responsiveness"] > 0 \
        and profile.get("adapt_phases") is None


def _controls(profile: dict) -> bool:
    return not _adaptive(profile)


def _by_platform(summary: dict) -> dict[str, dict]:
    return {entry["platform"]: entry for entry in summary["aggregates"]["by_platform"]}


def _check(name: str, passed: bool, detail: str) -> dict:
    return {"check": name, "passed": bool(passed), "detail": detail}


def _diversity_checks(agg: dict[str, dict], platforms: dict[str, dict]) -> list[dict]:
    checks = []
    for name, profile in platforms.items():
        entry = agg.get(name, {})
        change, ci = entry.get("diversity_change"), entry.get("diversity_change_ci")
        if change is None or ci is None:
            continue
        if _adaptive(profile):
            checks.append(_check(f"diversity falls on {name}", change < 0 and ci[1] < 0,
                                 f"change {change:+.3f}, CI [{ci[0]:+.3f}, {ci[1]:+.3f}]"))
        elif profile["personalization"] == 0:
            checks.append(_check(f"diversity does not fall on {name}", ci[1] >= 0,
                                 f"change {change:+.3f}, CI [{ci[0]:+.3f}, {ci[1]:+.3f}]"))
    return checks


def _bep_checks(agg: dict[str, dict], platforms: dict[str, dict]) -> list[dict]:
    bep = {n: agg[n]["bep"] for n in platforms if agg.get(n, {}).get("bep") is not None}
    adaptive = {n: bep[n] for n in bep if _adaptive(platforms[n])}
    controls = {n: bep[n] for n in bep if _controls(platforms[n])}
    checks = []
    if adaptive and controls:
        floor = min(adaptive.values())
        for name, value in controls.items():
            checks.append(_check(f"BEP of {name} far below every adaptive platform",
                                 value < 0.5 * floor,
                                 f"{value:.3f} vs lowest adaptive {floor:.3f}"))
    if len(adaptive) > 1:
        by_responsiveness = sorted(adaptive, key=lambda n: platforms[n]["responsiveness"])
        by_bep = sorted(adaptive, key=lambda n: adaptive[n])
        checks.append(_check("BEP order matches responsiveness", by_bep == by_responsiveness,
                             f"by responsiveness {by_responsiveness}, by BEP {by_bep}"))
    return checks


def ground_truth_checks(summary: dict, platforms: dict[str, dict]) -> list[dict]:
    agg = _by_platform(summary)
    checks = _diversity_checks(agg, platforms) + _bep_checks(agg, platforms)
    missing = [r["run_id"] for r in summary["runs"] if r["experiment"] == "depth"
               and r["complete"] and r["bep_ci"] is None]
    checks.append(_check("every BEP has a CI", not missing, f"missing: {missing}" if missing
                         else "all depth runs"))
    return checks
