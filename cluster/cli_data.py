"""`bubblescope` commands for session datasets and personas built from them."""

from __future__ import annotations

import argparse


def _dataset_import_personaact(args: argparse.Namespace) -> int:
    from bubblescope.personas.import_personaact import import_personaact

    result = import_personaact(args.src, args.out, collectors=args.collector)
    empty = f"; {len(result.empty_sessions)} without records" if result.empty_sessions else ""
    print(f"imported {result.sessions} sessions ({result.records} records{empty}) of "
          f"{', '.join(result.participants)} into {args.out}")
    return 0


def _dataset_stats(args: argparse.Namespace) -> int:
    import json

    from bubblescope.personas.dataset import dataset_summary, summary_table

    summary = dataset_summary(args.dir)
    print(json.dumps(summary, indent=1) if args.json else summary_table(summary))
    return 0


def _persona_from_dataset(args: argparse.Namespace) -> int:
    from bubblescope.personas.dataset import persona_from_dataset
    from bubblescope.personas.loader import save_persona

    persona = persona_from_dataset(args.dir, args.participant, narrative=args.narrative)
    save_persona(persona, args.out)
    print(f"wrote persona {persona.id} ({persona.stats.n_records} records) to {args.out}")
    return 0


def add_persona_from_dataset(persona_sub) -> None:
    from_dataset = persona_sub.add_parser("from-dataset",
                                          help="analyse one participant of a session dataset")
    from_dataset.add_argument("dir", help="session dataset folder")
    from_dataset.add_argument("--participant", required=True, help="participant id")
    from_dataset.add_argument("--out", required=True, help="persona file to write")
    from_dataset.add_argument("--narrative", help="self-narrative (default: a generated line)")
    from_dataset.set_defaults(func=_persona_from_dataset)


def add_dataset(sub) -> None:
    dataset = sub.add_parser("dataset", help="session datasets (what persona agents train on)")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True)
    personaact = dataset_sub.add_parser("import-personaact",
                                        help="convert PersonaAct session JSON into a dataset")
    personaact.add_argument("src", nargs="+", help="session files, a collector folder, or a "
                            "root of collector folders")
    personaact.add_argument("--out", required=True, help="dataset folder (created or added to)")
    personaact.add_argument("--collector", nargs="+", help="import only these collectors")
    personaact.set_defaults(func=_dataset_import_personaact)
    stats = dataset_sub.add_parser("stats", help="sessions, records and watch time per participant")
    stats.add_argument("dir", help="dataset folder")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(func=_dataset_stats)
