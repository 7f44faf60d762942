"""A writer process for the audit log's multi-process and crash tests.

Appends events from several threads and prints ``<seq> <tag> <thread> <n>``
on stdout, flushed, only after `append` (or `append_many`) returned: every
printed position was promised to be durable. Runs until --count events per
thread are written, or forever (--count 0) until it is killed.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from pipewarden.audit import AuditLog
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.db import Database
from pipewarden.events import Event


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    key = SigningKey.load(args.key)
    log = AuditLog(
        Database.open(args.url),
        signing_key=key,
        trusted=TrustedKeys([key.public], source=str(args.key)),
        log_id="test-log",
        checkpoint_dir=args.checkpoints,
        checkpoint_every=args.every,
    )
    out = threading.Lock()

    def make(thread: int, n: int) -> Event:
        return Event(
            action="audit.test_write",
            actor=args.tag,
            actor_kind="service",
            resource=f"writer:{args.tag}",
            outcome="allowed",
            attributes={"thread": thread, "n": n},
        )

    def report(seq: int, thread: int, n: int) -> None:
        with out:
            sys.stdout.write(f"{seq} {args.tag} {thread} {n}\n")
            sys.stdout.flush()

    def writer(thread: int) -> None:
        n = 0
        while args.count == 0 or n < args.count:
            if n % 5 == 4:
                seqs = log.append_many([make(thread, n), make(thread, n + 1), make(thread, n + 2)])
                for i, seq in enumerate(seqs):
                    report(seq, thread, n + i)
                n += 3
            else:
                report(log.append(make(thread, n)), thread, n)
                n += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()


if __name__ == "__main__":
    main()
