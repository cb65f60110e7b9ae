"""A corpus of bad inputs, tried as a new user would: every one ends in exit 2 and one line on
stderr naming the file (and the key, where there is one), never in a traceback.

Each case is data: the files to write (text, bytes or a mapping dumped as YAML), the command,
and what the one line must name. The commands stop in validation, before Ray starts: the Ray
start is replaced by a failure, so a case that slips through fails loudly instead of running.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bubblescope.cluster import local
from bubblescope.cluster.cli import main

ROOT = Path(__file__).resolve().parents[2]
PERSONA = ROOT / "examples" / "personas" / "concentrated.yaml"
NOT_UTF8 = b"job_id: caf\xe9\nseed: 1\n"

JOB: dict[str, Any] = {
    "job_id": "bad", "seed": 3, "storage_path": "out",
    "personas": ["persona.yaml"], "platforms": ["douyin-like", "null"],
    "experiments": {"depth": {"cultivation_steps": 60, "counterfactual_steps": 60},
                    "breadth": {"steps": 120}},
    "window": 20, "replicates": 1, "devices": {"count": 2, "cpus_per_device": 0.5},
    "metrics": {"port": None, "bootstrap": 100},
}
PERSONA_DATA: dict[str, Any] = yaml.safe_load(PERSONA.read_text("utf-8"))
INDEX = {"format": "bubblescope-sessions", "version": 1, "created": "2024-01-01T00:00:00Z",
         "participants": {"p1": {"sessions": 1, "records": 1}}}
SESSION = {"session_id": "s1", "collector": "p1", "platform": "douyin",
           "start_time": "2024-01-01T00:00:00Z",
           "records": [{"timestamp": "2024-01-01T00:00:10Z", "viewing_duration": 5.0}]}
SESSION_FILE = "data/p1/s1/session.json"


@dataclass
class Case:
    name: str
    files: dict[str, Any]  # relative path -> str | bytes | mapping (YAML) | None (a folder)
    argv: list[str]  # {tmp} stands for the case's folder
    names: list[str] = field(default_factory=list)  # what the line must hold ({tmp} too)

    def __str__(self) -> str:
        return self.name


def _set(data: dict, dotted: str, value: Any) -> dict:
    data = copy.deepcopy(data)
    *path, last = dotted.split(".")
    target = data
    for part in path:
        target = target.setdefault(part, {})
    if value is _DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return data


_DELETE = object()
AUDIT = ["audit", "{tmp}/job.yaml", "--no-progress", "--no-metrics"]
JOB_FILE = "{tmp}/job.yaml"


def job(name: str, dotted: str, value: Any, *names: str, argv=None, extra=None) -> Case:
    files = {"job.yaml": _set(JOB, dotted, value), "persona.yaml": PERSONA_DATA, **(extra or {})}
    return Case(f"job-{name}", files, argv or AUDIT, [JOB_FILE, *(names or (dotted,))])


def raw_job(name: str, text: str | bytes, *names: str) -> Case:
    return Case(f"job-{name}", {"job.yaml": text, "persona.yaml": PERSONA_DATA}, AUDIT,
                [JOB_FILE, *names])


def persona(name: str, dotted: str, value: Any, *names: str) -> Case:
    files = {"job.yaml": JOB, "persona.yaml": _set(PERSONA_DATA, dotted, value)}
    return Case(f"persona-{name}", files, AUDIT, ["{tmp}/persona.yaml", *(names or (dotted,))])


def raw_persona(name: str, text: str | bytes, *names: str) -> Case:
    return Case(f"persona-{name}", {"job.yaml": JOB, "persona.yaml": text}, AUDIT,
                ["{tmp}/persona.yaml", *names])


def inline(name: str, entry: Any, *names: str) -> Case:
    return job(f"platform-{name}", "platforms", ["null", entry], *names)


STATS = "dataset", "stats", "{tmp}/data"
FROM_DATASET = "persona", "from-dataset", "{tmp}/data", "--participant", "p1", "--out", \
    "{tmp}/p1.yaml"


def dataset(name: str, index: Any = INDEX, session: Any = SESSION, *names: str,
            argv=STATS, extra=None) -> Case:
    files = {"data/dataset.json": index, SESSION_FILE: session, **(extra or {})}
    return Case(f"dataset-{name}", files, list(argv), list(names))


def in_session(dotted: str, value: Any) -> dict:
    return _set(SESSION, dotted, value)


def in_record(key: str, value: Any) -> dict:
    return {**SESSION, "records": [_set(SESSION["records"][0], key, value)]}


JOB_CASES = [
    job("unknown-key", "replicatess", 3),
    job("unknown-nested-key", "devices.speed", 3, "devices"),
    job("window-negative", "window", -1),
    job("window-one", "window", 1),
    job("window-text", "window", "wide"),
    job("window-float", "window", 2.5),
    job("window-longer-than-phases", "window", 500, "window", "120"),
    job("window-longer-than-depth", "window", 61, "window", "60",
        extra={"job.yaml": _set(_set(JOB, "experiments.breadth", _DELETE), "window", 61)}),
    job("replicates-zero", "replicates", 0),
    job("replicates-negative", "replicates", -3),
    job("seed-negative", "seed", -1),
    job("seed-text", "seed", "abc"),
    job("personas-empty", "personas", []),
    job("personas-missing", "personas", _DELETE),
    job("personas-not-a-list", "personas", {"a": 1}),
    job("persona-file-missing", "personas", ["nope.yaml"], "personas.0", "nope.yaml"),
    job("persona-twice", "personas", ["persona.yaml", "persona.yaml"], "personas.1"),
    job("persona-number", "personas", [5], "personas.0"),
    job("persona-is-a-folder", "personas", ["folder"], "personas.0",
        extra={"folder": None}),
    job("platforms-empty", "platforms", []),
    job("platforms-missing", "platforms", _DELETE),
    job("platform-unknown", "platforms", ["tiktok-like"], "platforms.0", "tiktok-like"),
    job("platform-twice", "platforms", ["null", "null"], "platforms.1"),
    job("platform-number", "platforms", [5], "platforms.0"),
    inline("no-name", {"base": "douyin-like"}, "platforms"),
    inline("named-name", {"name": "douyin-like"}, "platforms.douyin-like"),
    inline("unknown-base", {"name": "mine", "base": "tiktok"}, "platforms.mine.base"),
    inline("base-mapping", {"name": "mine", "base": {"a": 1}}, "platforms.mine.base"),
    inline("unknown-key", {"name": "mine", "speed": 2}, "platforms.mine.speed"),
    inline("exploration-high", {"name": "mine", "exploration": 5}, "platforms.mine.exploration"),
    inline("exploration-text", {"name": "mine", "exploration": "lots"},
           "platforms.mine.exploration"),
    inline("like-boost-negative", {"name": "mine", "like_boost": -1},
           "platforms.mine.like_boost"),
    inline("bad-name", {"name": "my platform!"}, "platforms", "name"),
    inline("name-number", {"name": 5}, "platforms"),
    job("platform-inline-twice", "platforms", [{"name": "mine"}, {"name": "mine"}],
        "platforms.1"),
    job("experiments-missing", "experiments", _DELETE),
    job("experiments-empty", "experiments", {}, "experiments"),
    job("experiment-unknown", "experiments.width", {"steps": 3}),
    job("experiment-not-mapping", "experiments.depth", 5),
    job("cultivation-zero", "experiments.depth.cultivation_steps", 0),
    job("cultivation-negative", "experiments.depth.cultivation_steps", -5),
    job("counterfactual-text", "experiments.depth.counterfactual_steps", "many"),
    job("breadth-steps-huge", "experiments.breadth.steps", 10**9),
    job("breadth-unknown-key", "experiments.breadth.step", 10),
    job("devices-count-zero", "devices.count", 0, "devices"),
    job("devices-count-negative", "devices.count", -1, "devices"),
    job("devices-cpus-negative", "devices.cpus_per_device", -0.5, "devices"),
    job("devices-backend-unknown", "devices.backend", "usb", "devices"),
    job("devices-restarts-negative", "devices.max_restarts", -1, "devices"),
    job("devices-classifier-unknown", "devices.classifier", "magic", "devices"),
    job("devices-adb-sim-truth", "devices", {"backend": "adb", "classifier": "sim-truth"},
        "devices"),
    job("devices-adb-port", "devices", {"backend": "adb", "adb": {"port": 70000}}, "devices"),
    job("devices-adb-jar-missing", "devices",
        {"backend": "adb", "adb": {"scrcpy": {"server_jar": "nope.jar"}}}, "devices", "nope.jar"),
    job("devices-adb-whisper-missing", "devices",
        {"backend": "adb", "adb": {"scrcpy": {"server_jar": "persona.yaml"},
                                   "speech": {"whisper_path": "nowhere"}}}, "devices", "nowhere"),
    job("devices-pace-zero", "devices.sim_pace", 0, "devices"),
    job("devices-not-mapping", "devices", [1, 2], "devices"),
    job("metrics-port", "metrics.port", 70000),
    job("metrics-bootstrap-small", "metrics.bootstrap", 10),
    job("metrics-confidence", "metrics.confidence", 1.5),
    job("metrics-level", "metrics.category_level", "leaf"),
    job("metrics-unknown-key", "metrics.prot", 1),
    job("world-small", "world.catalogue_videos", 10),
    job("world-creators-text", "world.creators", "lots"),
    job("job-id-pattern", "job_id", "bad id!"),
    job("job-id-flag", "job_id", "bad", "job_id", argv=[*AUDIT, "--job-id", "../x"]),
    job("checkpoint-zero", "checkpoint_every", 0),
    job("checkpoint-seconds-zero", "checkpoint_seconds", 0),
    job("description-list", "description", ["a"]),
    job("policy-kind-unknown", "policy.kind", "smart", "policy"),
    job("policy-agent-missing", "policy.kind", "agent", "policy"),
    job("policy-agent-with-random", "policy", {"kind": "random", "agent": {}}, "policy"),
    job("storage-proc", "storage_path", "/proc/nope", "storage_path", "/proc/nope"),
    job("storage-under-a-file", "storage_path", "persona.yaml/out", "storage_path"),
    job("storage-number", "storage_path", 5),
    job("storage-unknown-uri", "storage_path", "nope://bucket/out", "storage_path", "nope://"),
    job("storage-flag-proc", "storage_path", "out", "storage_path", "/proc/nope",
        argv=[*AUDIT, "--out", "/proc/nope"]),
    raw_job("not-utf8", NOT_UTF8, "UTF-8"),
    raw_job("latin1-comment", "# caf\xe9\n".encode("latin-1") + yaml.safe_dump(JOB).encode(),
            "UTF-8"),
    raw_job("bad-yaml", "job_id: [bad\n", "YAML"),
    raw_job("tab-yaml", "job_id: x\n\tseed: 1\n", "YAML"),
    raw_job("python-tag", "job_id: !!python/object:os.system x\n", "YAML"),
    raw_job("a-list", "- a\n- b\n", "mapping"),
    raw_job("empty", "", "mapping"),
    raw_job("scalar", "hello\n", "mapping"),
    Case("job-file-missing", {}, AUDIT, [JOB_FILE, "cannot read"]),
    Case("job-file-is-folder", {"job.yaml": None}, AUDIT, [JOB_FILE]),
]

PERSONA_CASES = [
    persona("id-missing", "id", _DELETE),
    persona("id-pattern", "id", "a b"),
    persona("narrative-empty", "narrative", ""),
    persona("unknown-key", "nickname", "x"),
    persona("stats-missing", "stats", _DELETE),
    persona("records-zero", "stats.n_records", 0),
    persona("sessions-negative", "stats.n_sessions", -1),
    persona("like-rate-high", "stats.like_rate", 2),
    persona("sample-negative", "stats.duration_sample", [1.0, -2.0]),
    persona("hours-short", "stats.hour_histogram", [1] * 23),
    persona("category-unknown", "stats.categories.Cooking!!", PERSONA_DATA["stats"]["categories"]
            ["ACG"], "stats.categories"),
    persona("category-durations-mismatch", "stats.categories.ACG.n", 3, "stats.categories.ACG"),
    persona("level-sub", "stats.category_level", "sub"),
    persona("traits-list", "traits", ["a"]),
    persona("trait-number", "traits.novelty_tolerance", 5),
    persona("duration-missing", "stats.duration", _DELETE),
    persona("quick-skip-high", "stats.duration.quick_skip_rate", 1.5),
    persona("adapter-number", "adapter", 5),
    persona("source-list", "source", ["a"]),
    raw_persona("not-utf8", b"id: caf\xe9\n", "UTF-8"),
    raw_persona("bad-yaml", "id: {oops\n", "YAML"),
    raw_persona("a-list", "- 1\n", "mapping"),
    raw_persona("empty", "", "mapping"),
    raw_persona("bad-json", '{"id": "x",', "YAML"),
    Case("persona-same-id-twice", {
        "job.yaml": _set(JOB, "personas", ["persona.yaml", "again.yaml"]),
        "persona.yaml": PERSONA_DATA, "again.yaml": PERSONA_DATA},
        AUDIT, [JOB_FILE, "personas.1", "concentrated"]),
]

DATASET_CASES = [
    Case("dataset-folder-missing", {}, list(STATS), ["{tmp}/data"]),
    Case("dataset-no-index", {SESSION_FILE: SESSION}, list(STATS), ["{tmp}/data", "dataset.json"]),
    dataset("index-not-utf8", b'{"format": "caf\xe9"}', SESSION, "{tmp}/data/dataset.json"),
    dataset("index-bad-json", '{"format": ', SESSION, "{tmp}/data/dataset.json", "JSON"),
    dataset("index-list", [1], SESSION, "{tmp}/data/dataset.json"),
    dataset("index-empty", "", SESSION, "{tmp}/data/dataset.json"),
    dataset("index-format", {**INDEX, "format": "other"}, SESSION, "dataset.json", "format"),
    dataset("index-version", {**INDEX, "version": 99}, SESSION, "dataset.json", "version"),
    dataset("index-naive-time", {**INDEX, "created": "2024-01-01T00:00:00"}, SESSION,
            "dataset.json", "created"),
    dataset("index-unknown-key", {**INDEX, "owner": "me"}, SESSION, "dataset.json", "owner"),
    dataset("index-count-negative", _set(INDEX, "participants.p1.sessions", -1), SESSION,
            "dataset.json", "participants.p1.sessions"),
    dataset("index-participants-list", {**INDEX, "participants": ["p1"]}, SESSION,
            "dataset.json", "participants"),
    dataset("session-not-utf8", INDEX, b'{"session_id": "\xff"}', "{tmp}/" + SESSION_FILE),
    dataset("session-bad-json", INDEX, "{", "{tmp}/" + SESSION_FILE, "JSON"),
    dataset("session-list", INDEX, [SESSION], "{tmp}/" + SESSION_FILE),
    dataset("session-id-mismatch", INDEX, in_session("session_id", "s2"), "session_id"),
    dataset("collector-mismatch", INDEX, in_session("collector", "p2"), "collector"),
    dataset("session-unknown-key", INDEX, in_session("mood", "ok"), "mood"),
    dataset("session-records-missing", INDEX, in_session("records", _DELETE), "records"),
    dataset("session-platform-missing", INDEX, in_session("platform", _DELETE), "platform"),
    dataset("session-ends-before-start", INDEX, in_session("end_time", "2023-01-01T00:00:00Z"),
            "end_time"),
    dataset("session-naive-start", INDEX, in_session("start_time", "2024-01-01T00:00:00"),
            "start_time"),
    dataset("record-duration-negative", INDEX, in_record("viewing_duration", -1),
            "records.0.viewing_duration"),
    dataset("record-naive-time", INDEX, in_record("timestamp", "2024-01-01T00:00:10"),
            "records.0.timestamp"),
    dataset("record-action-unknown", INDEX, in_record("actions", [{"type": "dance"}]),
            "records.0.actions.0.type"),
    dataset("record-unknown-key", INDEX, in_record("mood", "happy"), "records.0.mood"),
    dataset("record-starts-after-end", INDEX, in_record("started_at", "2024-01-02T00:00:00Z"),
            "records.0"),
    dataset("record-video-duration-negative", INDEX, in_record("video_duration_s", -3),
            "records.0.video_duration_s"),
    dataset("record-category-number", INDEX, in_record("category", 5), "records.0.category"),
    dataset("session-file-is-folder", INDEX, None, "{tmp}/" + SESSION_FILE),
    dataset("from-dataset-not-utf8", INDEX, b"\xff\xfe", "{tmp}/" + SESSION_FILE,
            argv=FROM_DATASET),
    dataset("from-dataset-bad-record", INDEX, in_record("viewing_duration", "long"),
            "records.0.viewing_duration", argv=FROM_DATASET),
    dataset("from-dataset-nobody", INDEX, SESSION, "{tmp}/data", "nobody",
            argv=[*FROM_DATASET[:4], "nobody", *FROM_DATASET[5:]]),
    dataset("from-dataset-out-unwritable", INDEX, SESSION, "/proc/nope/p1.yaml",
            argv=[*FROM_DATASET[:6], "/proc/nope/p1.yaml"]),
    dataset("from-dataset-no-index", None, SESSION, "{tmp}/data", "dataset.json",
            argv=FROM_DATASET),
    Case("import-source-missing", {}, ["dataset", "import-personaact", "{tmp}/nowhere", "--out",
                                       "{tmp}/data"], ["{tmp}/nowhere"]),
    Case("import-source-not-utf8", {"src/session_1.json": b'{"id": "\xff"}'},
         ["dataset", "import-personaact", "{tmp}/src/session_1.json", "--out", "{tmp}/data"],
         ["{tmp}/src/session_1.json"]),
    Case("import-source-bad-json", {"src/session_1.json": "{"},
         ["dataset", "import-personaact", "{tmp}/src/session_1.json", "--out", "{tmp}/data"],
         ["{tmp}/src/session_1.json", "JSON"]),
    Case("import-source-list", {"src/session_1.json": "[]"},
         ["dataset", "import-personaact", "{tmp}/src/session_1.json", "--out", "{tmp}/data"],
         ["{tmp}/src/session_1.json"]),
]

STORED = {"job_id": "bad", "fingerprint": "0", "source": "job.yaml", "storage_path": ".",
          "spec": JOB, "platforms": {"null": {"name": "null"}}, "personas": []}
REPORT = ["report", "{tmp}/out/bad"]


def stored(name: str, job_yaml: Any, *names: str) -> Case:
    return Case(f"report-{name}", {"out/bad/job.yaml": job_yaml}, REPORT,
                ["{tmp}/out/bad", *names])


REPORT_CASES = [
    Case("report-no-job-yaml", {"out/bad": None}, REPORT, ["{tmp}/out/bad", "job.yaml"]),
    stored("not-utf8", b"job_id: caf\xe9\n", "UTF-8"),
    stored("bad-yaml", "spec: [\n", "YAML"),
    stored("a-list", "- 1\n", "mapping"),
    stored("spec-missing", _set(STORED, "spec", _DELETE), "spec"),
    stored("spec-invalid", _set(STORED, "spec.window", -1), "spec.window"),
    stored("platform-invalid", _set(STORED, "platforms.null.exploration", 9),
           "platforms.exploration"),
    stored("platforms-list", _set(STORED, "platforms", ["null"])),
    stored("persona-missing", _set(STORED, "personas", ["ghost"]), "personas", "ghost"),
]

CASES = [*JOB_CASES, *PERSONA_CASES, *DATASET_CASES, *REPORT_CASES]


def _write(folder: Path, files: dict[str, Any]) -> None:
    for relative, content in files.items():
        path = folder / relative
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif relative.endswith(".json"):
            path.write_text(json.dumps(content), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 100
    assert len({case.name for case in CASES}) == len(CASES)


def test_the_base_files_are_valid(tmp_path: Path) -> None:
    """Each case breaks exactly one thing: what it starts from loads."""
    from bubblescope.cluster.job import load_job
    from bubblescope.personas.dataset import dataset_summary

    _write(tmp_path, {"job.yaml": JOB, "persona.yaml": PERSONA_DATA,
                      "data/dataset.json": INDEX, SESSION_FILE: SESSION})
    assert load_job(tmp_path / "job.yaml").job_id == "bad"
    assert dataset_summary(tmp_path / "data")["all"]["records"] == 1


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path, monkeypatch,
                                          capsys) -> None:
    def no_ray(address):
        raise AssertionError(f"{case.name} passed validation and would start Ray")

    monkeypatch.setattr(local, "_start_ray", no_ray)
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, case.files)
    code = main([part.replace("{tmp}", str(tmp_path)) for part in case.argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 2, err
    line = err.strip()
    assert line.startswith("error: ") and "\n" not in line, err
    for needle in case.names:
        assert needle.replace("{tmp}", str(tmp_path)) in line, line
