"""The web chat: `python app.py` (same as `rag serve`). Wiring only; the page lives in rag/chat.py."""

from __future__ import annotations

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
