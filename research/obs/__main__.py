"""Upload, download or list run directories on OBS.

  python -m research.obs upload --dest obs://bucket/prefix logs/<run-id> [--include '*.ckpt' ...]
  python -m research.obs download --dest obs://bucket/prefix <run-id> OUT_DIR
  python -m research.obs list --dest obs://bucket/prefix [<run-id>]

Endpoint and credentials come from OBS_ENDPOINT, OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY (optional
OBS_SIGNATURE, OBS_REGION, OBS_PATH_STYLE, OBS_PART_SIZE_MB, OBS_TASK_NUM) or from --config FILE
(YAML/JSON with the same fields in lower case: endpoint, access_key_id, ...); the environment wins.
Credentials are never printed. Exit status: 0 done, 1 transfer/verification error, 2 bad settings or a missing run directory.
"""
import argparse
import logging
import os
import sys

from .settings import ObsConfigError, load_settings
from .store import ObsError, ObsStore
from preprocess.cli import Failure, Parser, UserError, reported_as, run_main


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.obs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="OBS settings file (YAML/JSON); default $OBS_CONFIG if set")
    parser.add_argument("--dest", required=True, help="obs://bucket/prefix under which runs are stored")
    parser.add_argument("--part_size_mb", type=float, help="multipart part size, MiB (default 16)")
    parser.add_argument("--task_num", type=int, help="parts transferred concurrently (default 4)")
    parser.add_argument("--record_dir", help="resume records (default ~/.cache/mathlora/obs_records)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="upload a run directory to <dest>/<run-id>/")
    up.add_argument("run_dir")
    up.add_argument("--run_id", help="default: the run directory's name")
    up.add_argument("--include", nargs="+", help="glob patterns on paths relative to the run directory")
    down = sub.add_parser("download", help="download <dest>/<run-id>/ into OUT_DIR and verify MD5s")
    down.add_argument("run_id")
    down.add_argument("out_dir")
    ls = sub.add_parser("list", help="list run ids under <dest>, or the objects of one run")
    ls.add_argument("run_id", nargs="?")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "upload" and not os.path.isdir(args.run_dir):
        # Before the OBS settings: a wrong path is the first thing to fix, whatever else is missing.
        raise UserError(f"run directory not found: {args.run_dir}")

    with reported_as(UserError, ObsConfigError, ValueError):
        settings = load_settings(args.config)
        if args.part_size_mb is not None:
            settings.part_size_mb = args.part_size_mb
        if args.task_num is not None:
            settings.task_num = args.task_num
        settings.validate("command line")
        store = ObsStore(settings, args.dest, args.record_dir)
    with reported_as(Failure, ObsError, FileNotFoundError, NotADirectoryError):
        with store:
            if args.command == "upload":
                for r in store.upload_run(args.run_dir, args.run_id, args.include):
                    print(f"uploaded obs://{store.url.bucket}/{r.key} {r.size} bytes md5 {r.md5} verified"
                          + (" (resumed)" if r.resumed else "") + (" (stale record discarded)" if r.restarted_stale
                                                                  else ""))
            elif args.command == "download":
                for path in store.download_run(args.run_id, args.out_dir):
                    print(f"downloaded {path} verified")
            elif args.run_id:
                for obj in store.list_run(args.run_id):
                    print(f"{obj.size:>14} {obj.etag:<36} {obj.name}")
            else:
                print("\n".join(store.list_runs()))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
