"""RFC 6962 Merkle trees: the published tree heads, and proofs that verify exactly when they should."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.audit import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from pipewarden.audit._frontier import Frontier
from pipewarden.errors import IntegrityError

# The eight entries of the RFC 6962 reference test data (certificate-transparency's merkle
# tree tests) and MTH(D[n]) for n = 0..8.
CT_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# PATH(0, D[8]) from the same test data.
CT_PATH_0_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
LEAVES = [leaf_hash(e) for e in CT_ENTRIES]


def test_tree_heads_match_the_reference_vectors() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    for n in range(9):
        assert root(LEAVES[:n]).hex() == CT_ROOTS[n], f"tree size {n}"


def test_the_reference_inclusion_path() -> None:
    path = inclusion_proof(0, LEAVES)
    assert [p.hex() for p in path] == CT_PATH_0_8
    verify_inclusion(LEAVES[0], 0, 8, path, bytes.fromhex(CT_ROOTS[8]))


def tree(n: int) -> list[bytes]:
    return [leaf_hash(b"record-%d" % i) for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 64, 100])
def test_every_inclusion_proof_verifies_and_nothing_else_does(n: int) -> None:
    leaves = tree(n)
    head = root(leaves)
    for i in range(n):
        path = inclusion_proof(i, leaves)
        verify_inclusion(leaves[i], i, n, path, head)
        with pytest.raises(IntegrityError):
            verify_inclusion(leaf_hash(b"forged"), i, n, path, head)
        if n > 1:
            with pytest.raises(IntegrityError):
                verify_inclusion(leaves[i], (i + 1) % n, n, path, head)
            with pytest.raises(IntegrityError):
                verify_inclusion(leaves[i], i, n, path[:-1], head)
            with pytest.raises(IntegrityError):
                verify_inclusion(leaves[i], i, n, [*path, path[0]], head)
    with pytest.raises(IntegrityError, match="outside"):
        verify_inclusion(leaves[0], n, n, [], head)


@pytest.mark.parametrize("n", [*range(1, 26), 64, 65])
def test_every_consistency_proof_verifies_and_a_rewritten_prefix_does_not(n: int) -> None:
    leaves = tree(n)
    head = root(leaves)
    for m in range(1, n + 1):
        proof = consistency_proof(m, leaves)
        verify_consistency(m, n, root(leaves[:m]), head, proof)
        rewritten = [leaf_hash(b"rewritten"), *leaves[1:m]]
        with pytest.raises(IntegrityError):
            verify_consistency(m, n, root(rewritten), head, proof)
        if m < n:
            with pytest.raises(IntegrityError):
                verify_consistency(m, n, root(leaves[:m]), root([*leaves[:-1], leaf_hash(b"x")]), proof)
            with pytest.raises(IntegrityError):
                verify_consistency(m, n, root(leaves[:m]), head, proof[:-1])


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_proofs_for_arbitrary_logs(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(e) for e in entries]
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1))
    verify_inclusion(leaves[i], i, n, inclusion_proof(i, leaves), root(leaves))
    m = data.draw(st.integers(1, n))
    verify_consistency(m, n, root(leaves[:m]), root(leaves), consistency_proof(m, leaves))


@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=40))
def test_a_stored_frontier_resumes_the_tree_exactly(stored: int, more: int) -> None:
    """A frontier kept as bytes at `stored` leaves, read back and extended, gives every later head."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(stored + more)]
    frontier = Frontier()
    for leaf in leaves[:stored]:
        frontier.add(leaf)
    resumed = Frontier.from_bytes(stored, frontier.to_bytes())
    assert len(frontier.to_bytes()) == 32 * bin(stored).count("1")
    assert resumed.root() == root(leaves[:stored])
    for n, leaf in enumerate(leaves[stored:], start=stored + 1):
        resumed.add(leaf)
        assert (resumed.size, resumed.root()) == (n, root(leaves[:n]))


@pytest.mark.parametrize(("size", "length"), [(5, 32), (5, 96), (8, 0), (1, 31), (0, 32)])
def test_bytes_that_cannot_be_a_frontier_of_that_size_are_refused(size: int, length: int) -> None:
    with pytest.raises(ValueError, match="are not the frontier of"):
        Frontier.from_bytes(size, bytes(length))
