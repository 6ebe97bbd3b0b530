"""Word-prefix search over node names in Python, ranked as the SQLite store's FTS5 query ranks it: exact name first,
then bm25 (columns name, qualified name and name words weighted 10, 5, 1), then id. For stores without full-text
search (DynamoDB), which read a graph's nodes and rank them here."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from services.agents.knowledge.graph import Node
from services.agents.knowledge.store import query_words, search_terms

WEIGHTS = (10.0, 5.0, 1.0)  # as bm25(graph_search, 10.0, 5.0, 1.0) in the SQLite store
K1, B = 1.2, 0.75  # FTS5's bm25 constants
_TOKEN = re.compile(r"[^\W_]+")  # FTS5's unicode61 tokenizer: runs of letters and digits


def _tokens(text: str) -> list[str]:
    """unicode61's tokens: lower case, diacritics removed."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return _TOKEN.findall(plain)


@dataclass(frozen=True)
class _Row:
    node: Node
    columns: tuple[list[str], list[str], list[str]]

    @property
    def length(self) -> int:
        return sum(len(c) for c in self.columns)


class NameIndex:
    """A graph's nodes with their names' words, made once and searched many times."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._rows = [_Row(n, (_tokens(n.name), _tokens(n.qualified_name), search_terms(n).split())) for n in nodes]
        self._average = sum(r.length for r in self._rows) / len(self._rows) if self._rows else 0.0

    def search(self, text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
        """Nodes whose names have a word starting with each word of `text`, of `kinds` (all when empty), one slice
        of them in rank order, and how many there are. InvalidArgument when `text` has no word."""
        words = query_words(text)
        rows = self._rows
        # Weighted hits of each word in each row (0 when the word is nowhere in the row).
        hits = [[sum(w * sum(t.startswith(word) for t in column) for w, column in zip(WEIGHTS, row.columns, strict=True))
                 for word in words] for row in rows]
        idf = []
        for j in range(len(words)):
            having = sum(1 for row_hits in hits if row_hits[j])
            value = math.log((len(rows) - having + 0.5) / (having + 0.5))
            idf.append(value if value > 0 else 1e-6)  # as FTS5: a word in most rows still counts a little
        wanted = set(kinds)
        exact = text.strip().lower()
        ranked = []
        for row, row_hits in zip(rows, hits, strict=True):
            if not all(row_hits) or (wanted and row.node.kind not in wanted):
                continue
            norm = K1 * (1 - B + B * row.length / self._average)
            score = -sum(idf[j] * (f * (K1 + 1)) / (f + norm) for j, f in enumerate(row_hits))
            ranked.append((row.node.name.lower() != exact, score, row.node.id, row.node))
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked[offset:offset + limit]], len(ranked)


def search_nodes(nodes: Sequence[Node], text: str, kinds: Sequence[str], offset: int, limit: int) -> tuple[list[Node], int]:
    """One search over `nodes` (see NameIndex.search)."""
    return NameIndex(nodes).search(text, kinds, offset, limit)
