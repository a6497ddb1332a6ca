"""`hrnet weights list | info | download | place`: the registry on the command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from .entry import SOURCES, Weights


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import list_weights
    from .tables import text_table

    entries = list_weights(task=args.task, arch=args.arch, source=args.source,
                           available=True if args.available else None)
    if not entries:
        print("no weights match; drop a filter (hrnet weights list)", file=sys.stderr)
        return 1
    print(text_table(entries))
    print(f"\n{len(entries)} weights; details: hrnet weights info NAME", file=sys.stderr)
    return 0


def describe(entry: Weights) -> str:
    """Every field of an entry, one per line, then where its file is."""
    lines = [entry.name]
    for f in fields(Weights):
        value = getattr(entry, f.name)
        if f.name == "name" or value in (None, (), ""):
            continue
        if f.name == "metrics":
            for metric in value:
                protocol = f" ({metric.protocol})" if metric.protocol else ""
                lines.append(f"  metric: {metric} on {metric.dataset}{protocol}")
            continue
        lines.append(f"  {f.name}: {', '.join(map(str, value)) if isinstance(value, tuple) else value}")
    cached = entry.cache_path.is_file()
    lines.append(f"  cache: {entry.cache_path} ({'present' if cached else 'not downloaded'})")
    if not entry.available:
        lines.append(f"  not loadable yet: needs {entry.pending}")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    from .registry import get_weights

    print(describe(get_weights(args.name)))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ..errors import CheckpointError
    from .registry import get_weights

    failed = 0
    for name in args.names:
        try:
            print(get_weights(name).get_path(timeout=args.timeout, retries=args.retries))
        except CheckpointError as error:
            print(f"hrnet weights download: error: {error}", file=sys.stderr)
            failed += 1
    return 5 if failed else 0


def _cmd_place(args: argparse.Namespace) -> int:
    from .registry import get_weights

    entry = get_weights(args.name)
    path = entry.place(args.file)
    checked = "hash checked" if entry.sha256 or entry.hash_prefix else "no published hash to check"
    print(f"{path} ({checked})")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="published pretrained weights: list, info, download, place")
    actions = parser.add_subparsers(dest="weights_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="registered weights with their headline metric")
    listing.add_argument("--task", default=None, help="e.g. classification, pose, segmentation, detection")
    listing.add_argument("--arch", default=None, help="a registered variant, e.g. hrnet_w32 (see `hrnet list`)")
    listing.add_argument("--source", default=None, choices=SOURCES, help="the publisher")
    listing.add_argument("--available", action="store_true", help="only weights this version can load")
    listing.set_defaults(func=_cmd_list)

    info = actions.add_parser("info", help="everything about one entry: file, hash, metrics, preprocessing")
    info.add_argument("name", help="ARCH.TAG, e.g. hrnet_w32.coco_256x192")
    info.set_defaults(func=_cmd_info)

    download = actions.add_parser("download", help="download into the cache (hash-checked); prints the paths")
    download.add_argument("names", nargs="+", metavar="NAME")
    download.add_argument("--timeout", type=float, default=None, help="seconds per network operation")
    download.add_argument("--retries", type=int, default=None, help="attempts on network errors")
    download.set_defaults(func=_cmd_download)

    place = actions.add_parser("place", help="put a file downloaded by hand (a shared-drive link) into the cache")
    place.add_argument("name", help="ARCH.TAG of the entry the file belongs to")
    place.add_argument("file", help="the downloaded checkpoint")
    place.set_defaults(func=_cmd_place)
