"""The core's one-line messages in the window's words.

The core's messages are shared with the command line, so their hints name its options (`--profile NAME`,
`--endpoint-url`, `--out`). In the window those mean nothing: `in_window_words` names the window's own fields
instead. Known hints are reworded whole; any other option is reduced to its name in plain words.
"""

from __future__ import annotations

import re

__all__ = ["in_window_words"]

SOURCE_DOCK = "the Source and tile panel"

# (pattern of the command-line hint, the window's wording), most specific first
_HINTS = [
    (r"create it with `aws configure --profile [^`]*` or pick another with --profile",
     f"set it up with the AWS command line (`aws configure`) or choose another profile in {SOURCE_DOCK}"),
    (r"or pass --profile NAME", f"or choose an AWS profile in {SOURCE_DOCK}"),
    (r"check the network connection or --endpoint-url",
     f"check the network connection, or the custom S3 endpoint in {SOURCE_DOCK}"),
    (r"check --bucket and --endpoint-url", f"check the bucket and the custom S3 endpoint in {SOURCE_DOCK}"),
    (r"free some space or use --out elsewhere",
     "free some space or choose another download folder (File → Settings)"),
    (r"pick a writable folder with --out", "choose a writable download folder (File → Settings)"),
    (r"(?:use|pass) --overwrite to replace it", "choose another name, or confirm replacing it"),
    (r"(?<![\w-])(?:--)?bbox (?=['\"\-\d.])", "area "),  # the core names an area by its option: 'bbox 12.1,…'
]
_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def in_window_words(message: str) -> str:
    """`message` with command-line options replaced by what the window calls them."""
    for pattern, words in _HINTS:
        message = re.sub(pattern, words, message)
    return _OPTION.sub(lambda m: m.group(1).replace("-", " "), message)
