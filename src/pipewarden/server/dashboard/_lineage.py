"""An artifact's lineage as a layered graph: ancestors to the left, the artifact on the right.

Each version is one node however many paths reach it (a data set two models were trained from); a
node sits in the column of its longest path to the artifact, so every edge runs left to right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from pipewarden.store import Artifact, Lineage

__all__ = ["Graph", "artifact_href", "layout", "verdict_class"]

NODE_W, NODE_H = 230, 54
GAP_X, GAP_Y, PAD = 72, 18, 12
_LABEL = 30


def artifact_href(name: str, version: int) -> str:
    return f"/ui/artifacts/{quote(name, safe='/')}/versions/{version}"


def verdict_class(art: Artifact) -> str:
    """How the scan's verdict is shown: ``clean``, ``findings`` or ``unscanned``."""
    if not art.scan.scanned:
        return "unscanned"
    return "clean" if art.scan.findings == 0 else "findings"


@dataclass(frozen=True, slots=True)
class Node:
    ref: str
    label: str
    detail: str
    href: str
    x: int
    y: int
    current: bool
    verdict: str


@dataclass(frozen=True, slots=True)
class Edge:
    path: str
    title: str


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    node_w: int
    node_h: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _short(text: str) -> str:
    return text if len(text) <= _LABEL else "…" + text[-(_LABEL - 1) :]


def layout(tree: Lineage) -> Graph:
    """Place every version of `tree` and the edges from each parent to its child."""
    depth: dict[str, int] = {}
    arts: dict[str, Artifact] = {}
    links: set[tuple[str, str]] = set()

    def visit(node: Lineage, d: int) -> None:
        ref = node.artifact.ref
        arts[ref] = node.artifact
        if depth.get(ref, -1) >= d:
            return
        depth[ref] = d
        for parent in node.parents:
            links.add((parent.artifact.ref, ref))
            visit(parent, d + 1)

    visit(tree, 0)
    deepest = max(depth.values())
    columns: dict[int, list[str]] = {}
    for ref in depth:  # in the order first met: the tree's own order
        columns.setdefault(deepest - depth[ref], []).append(ref)
    rows = max(len(refs) for refs in columns.values())
    height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y
    place: dict[str, tuple[int, int]] = {}
    for column, refs in columns.items():
        used = len(refs) * NODE_H + (len(refs) - 1) * GAP_Y
        top = (height - used) // 2
        for row, ref in enumerate(refs):
            place[ref] = (PAD + column * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y))
    nodes = []
    for ref, (x, y) in place.items():
        art = arts[ref]
        nodes.append(
            Node(
                ref=ref,
                label=_short(art.name),
                detail=f"v{art.version} · {art.scan.describe()}",
                href=artifact_href(art.name, art.version),
                x=x,
                y=y,
                current=ref == tree.artifact.ref,
                verdict=verdict_class(art),
            )
        )
    edges = []
    for parent, child in sorted(links):
        (px, py), (cx, cy) = place[parent], place[child]
        x1, y1, x2, y2 = px + NODE_W, py + NODE_H // 2, cx, cy + NODE_H // 2
        bend = (x2 - x1) // 2
        edges.append(
            Edge(f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 6},{y2}", f"{parent} → {child}")
        )
    width = PAD * 2 + (deepest + 1) * NODE_W + deepest * GAP_X
    return Graph(width, height, NODE_W, NODE_H, tuple(nodes), tuple(edges))
