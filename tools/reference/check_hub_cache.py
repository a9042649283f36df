#!/usr/bin/env python3
"""Checks a Hugging Face cache written by koala_hub (koala-cli --download) with huggingface_hub's own reader.

    ~/.cache/koala-studio/torch-2.11/bin/python tools/reference/check_hub_cache.py [CACHE_DIR] [--repo ORG/NAME]

CACHE_DIR defaults to huggingface_hub's (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). Prints what
scan_cache_dir() sees (repos, revisions, refs, files, sizes) and fails (exit 1) on any warning it raises, on a
revision whose files do not resolve into the repo's blobs/, and on a snapshot file that is not a relative symlink.
With --repo it also checks that huggingface_hub resolves refs/main to the same snapshot (try_to_load_from_cache).
A manual check (needs huggingface_hub), not a CI test.
"""
import argparse
import os
import sys

from huggingface_hub import scan_cache_dir, try_to_load_from_cache
from huggingface_hub.constants import HF_HUB_CACHE


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", nargs="?", default=HF_HUB_CACHE)
    ap.add_argument("--repo", help="also resolve ORG/NAME's model_index.json at main through huggingface_hub")
    args = ap.parse_args()
    info = scan_cache_dir(args.cache)
    problems = [f"scan_cache_dir warning: {w}" for w in info.warnings]
    print(f"cache {args.cache}: {len(info.repos)} repos, {info.size_on_disk} bytes")
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        print(f"  {repo.repo_type} {repo.repo_id}: {repo.size_on_disk} bytes, {repo.nb_files} blobs, "
              f"refs {sorted(repo.refs)}")
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            print(f"    {rev.commit_hash} refs={sorted(rev.refs)} files={rev.nb_files} bytes={rev.size_on_disk}")
            for f in rev.files:
                link = f.file_path
                if not os.path.islink(link) or os.path.isabs(os.readlink(link)):
                    problems.append(f"{link} is not a relative symlink")
                if os.path.dirname(str(f.blob_path)) != os.path.join(str(repo.repo_path), "blobs"):
                    problems.append(f"{link} resolves outside blobs/: {f.blob_path}")
                if not os.path.isfile(f.blob_path):
                    problems.append(f"{link}: blob {f.blob_path} missing")
    if args.repo:
        path = try_to_load_from_cache(args.repo, "model_index.json", cache_dir=args.cache)
        print(f"  huggingface_hub resolves {args.repo}/model_index.json@main to {path}")
        if not isinstance(path, str) or not os.path.isfile(path):
            problems.append(f"{args.repo}: model_index.json at main not found by try_to_load_from_cache")
    for p in problems:
        print("PROBLEM:", p)
    print("OK" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
