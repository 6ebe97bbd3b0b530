"""Entities named in READMEs and docstrings, found offline: code identifiers and noun phrases."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either", "else", "etc", "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "least", "less", "let", "like", "made", "make", "many", "may", "me", "might", "more", "most", "much", "must", "my", "need", "needs", "no", "nor", "not", "now", "of", "off", "often", "on", "once", "one", "only", "or", "other", "others", "our", "ours", "out", "over", "own", "per", "rather", "same", "see", "shall", "she", "should", "since", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "though", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "use", "used", "uses", "using", "very", "via", "was", "we", "were", "what", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours", "returns", "return", "raises", "given", "new", "get", "gets", "set", "sets", "true", "false", "none"]
)

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+|www\.\S+")
_CAMEL = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_DOTTED = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+\b")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|[.,;:!?()\[\]{}\"<>|=*#/\\]|\s-\s|\n\s*\n")


@dataclass(frozen=True)
class Mention:
    """An entity as found in one text: `key` is its normalised form (the node id), `text` its first spelling."""

    key: str
    kind: str  # "identifier" or "phrase"
    text: str
    count: int

    def to_list(self) -> list[object]:
        return [self.key, self.kind, self.text, self.count]

    @classmethod
    def from_list(cls, value: list[object]) -> Mention:
        key, kind, text, count = value
        return cls(str(key), str(kind), str(text), int(str(count)))


def _identifiers(text: str) -> list[str]:
    found = [m.strip("()") for m in _INLINE_CODE.findall(text)]
    found = [f for f in found if _IDENTIFIER.match(f)]
    prose = _INLINE_CODE.sub(" ", text)
    for pattern in (_DOTTED, _CAMEL, _SNAKE):
        found += [m for m in pattern.findall(prose) if not re.fullmatch(r"[a-z]+\.[a-z]{2,4}", m) or "_" in m]
    return found


def _phrases(text: str) -> list[str]:
    phrases: list[str] = []
    run: list[str] = []
    # One pass over words and breaks: a break, a stop word or a CamelCase word ends the current run.
    for token in _TOKEN.findall(text):
        if token[0].isalpha():
            lowered = token.lower()
            if len(token) > 1 and lowered not in STOP_WORDS and token[1:] == token[1:].lower():
                run.append(lowered)
                continue
        if 2 <= len(run) <= 3:
            phrases.append(" ".join(run))
        run = []
    if 2 <= len(run) <= 3:
        phrases.append(" ".join(run))
    return phrases


def mentions(text: str, *, markdown: bool = False) -> list[Mention]:
    """The entities of one text, identifiers first, each list sorted by key (deterministic).

    Identifiers are inline code, CamelCase, snake_case and dotted names. Noun phrases are runs of two or three content
    words between stop words and punctuation (the candidate step of RAKE), kept when they occur at least twice in the
    text or appear in a Markdown heading."""
    if markdown:
        text = _LINK_TARGET.sub("]", _FENCE.sub("\n\n", text))
    text = _URL.sub(" . ", text)
    headings = {p for line in text.splitlines() if line.startswith("#") for p in _phrases(line.lstrip("#"))} if markdown else set()
    identifiers = Counter(_identifiers(text))
    phrases = Counter(_phrases(_DOTTED.sub(" . ", text)))
    out = [Mention(name, "identifier", name, n) for name, n in identifiers.items()]
    out += [Mention(p, "phrase", p, n) for p, n in phrases.items() if n >= 2 or p in headings]
    return sorted(out, key=lambda m: (m.kind != "identifier", m.key))
