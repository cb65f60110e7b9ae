"""What the text classifier reads from an observation, and its keyword evidence.

On-screen text from a short-video app mixes the content (title, caption, hashtags, the
creator's handle) with chrome: counters ("1234 likes", "1.2K"), and button labels. Chrome
says nothing about the category but, embedded with the content, pulls every video towards the
same point, so it is stripped before embedding. Handles and hashtags keep their words
("@street_food_42" -> "street food"): creators often name themselves after their topic.

Keyword evidence: a subcategory whose own label words ("Street Food") appear in the text, or
words close to them ("kitten" ~ "Cats"), is more likely. A whole-text sentence embedding
blurs such single words, so they are matched one word at a time, each word embedded on its
own (and cached: a feed's vocabulary repeats).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bubblescope.contracts import Observation
from bubblescope.perception.embeddings import TextEncoder

_COUNTER = re.compile(r"\b\d[\d,.]*\s*[kmbw万]?\b", re.IGNORECASE)
_CHROME = re.compile(
    r"\b(add a comment\W*|share to|copy link|likes?|comments?|shares?|views?|plays?|followers?|"
    r"following|follow|send|cancel|close|reply|replies)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'-]*")
_STOPWORDS = frozenset({"and", "the", "of", "for", "a", "an", "to", "in", "on", "with"})
WORD_CACHE_LIMIT = 200_000  # distinct words kept; cleared when full (about 300 MB at 384 dims)


def clean(text: str) -> str:
    """Content words only: counters, button labels, '@', '#' and '_' removed."""
    text = text.replace("#", " ").replace("@", " ").replace("_", " ")
    return " ".join(_CHROME.sub(" ", _COUNTER.sub(" ", text)).split())


def observation_text(observation: Observation) -> str:
    """On-screen text first (short, written by the creator), then the transcript.

    The order matters: the encoder truncates at 256 tokens, so a long transcript loses its end
    rather than pushing the title out.
    """
    parts = [clean(line) for line in observation.on_screen_text.splitlines()]
    screen = ". ".join(part for part in parts if part)
    transcript = clean(observation.transcript)
    return ". ".join(part for part in (screen, transcript) if part)


def words(text: str) -> list[str]:
    """Distinct lower-case words in order of first appearance."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))


def label_words(label: str) -> list[str]:
    """The words of a subcategory label ("Sandbox & Virtual Worlds" -> sandbox, virtual, worlds)."""
    found = [w for w in words(label.replace("&", " ")) if w not in _STOPWORDS]
    return found or [label.lower()]


class KeywordEvidence:
    """Per subcategory: mean over its label words of the best cosine with any word of a text."""

    def __init__(self, encoder: TextEncoder, labels: Sequence[str]) -> None:
        self.encoder = encoder
        per_label = [label_words(label) for label in labels]
        vocabulary = sorted({w for ws in per_label for w in ws})
        index = {w: i for i, w in enumerate(vocabulary)}
        self.label_vectors = encoder.encode(vocabulary)
        self.pooling = np.zeros((len(vocabulary), len(labels)), dtype=np.float32)
        for k, ws in enumerate(per_label):
            for w in ws:
                self.pooling[index[w], k] = 1.0 / len(ws)
        self._cache: dict[str, np.ndarray] = {}

    def _vectors(self, needed: set[str]) -> None:
        new = sorted(needed - self._cache.keys())
        if len(self._cache) + len(new) > WORD_CACHE_LIMIT:
            self._cache.clear()
            new = sorted(needed)
        self._cache.update(zip(new, self.encoder.encode(new), strict=True))

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(labels)) in [-1, 1]; 0 for a text without words."""
        per_text = [words(text) for text in texts]
        self._vectors({w for ws in per_text for w in ws})
        out = np.zeros((len(texts), self.pooling.shape[1]), dtype=np.float32)
        for i, ws in enumerate(per_text):
            if ws:
                best = (np.stack([self._cache[w] for w in ws]) @ self.label_vectors.T).max(0)
                out[i] = best @ self.pooling
        return out
