"""Prompt-injection scoring: a fine-tuned classifier plus high-precision patterns.

The classifier (``guardrails.train_injection``, exported to ONNX at setup) scores a
text 0..1; a few patterns that are never benign in this domain ("ignore all previous
instructions", "reveal your system prompt", their German, French, Spanish and Dutch
forms) score 1.0. The score is the larger of the two. The thresholds are settings:
block a customer message at >= 0.85, drop retrieved or tool-returned text from a
prompt at >= 0.70, quarantine a document at ingest at >= 0.90.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from embeddings.tokenizer import TextTokenizer
from guardrails.lexical import FILE as LEXICAL_FILE
from guardrails.lexical import LexicalModel
from runtime.pii import identifier_spans

FAMILY = "injection-classifier"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MAX_TOKENS = 128
"""Word pieces the classifier reads (a 4,000-character message is scored on its head
and, when longer, on a window at its tail too)."""

_PATTERNS: tuple[str, ...] = (
    # English
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,30}\b(?:all|any|every|the|your|"
    r"previous|prior|above|earlier|preceding|original|system)\b[^.!?\n]{0,20}\b(?:instructions?|"
    r"rules|prompts?|guidelines|directives|constraints|guardrails|polic(?:y|ies))\b",
    r"\b(?:reveal|print|show|repeat|output|display|leak|dump|tell me)\b[^.!?\n]{0,30}\b(?:your|the)"
    r"\s+(?:system|initial|original|hidden|secret)\s+(?:prompt|instructions?|message|rules)\b",
    r"\byou are (?:now )?(?:in )?(?:DAN|developer mode|jailbreak mode|unrestricted mode)\b",
    r"\bdo anything now\b",
    # German, French, Spanish, Dutch
    r"\b(?:ignoriere|vergiss|missachte)\b[^.!?\n]{0,30}\b(?:anweisungen|instruktionen|regeln|"
    r"vorgaben|befehle)\b",
    r"\b(?:ignore[zr]?|oublie[zr]?)\b[^.!?\n]{0,30}\b(?:instructions|consignes|règles)\b",
    r"\b(?:ignora|olvida|olvidate|olvídate)\b[^.!?\n]{0,30}\b(?:instrucciones|reglas|normas)\b",
    r"\b(?:negeer|vergeet)\b[^.!?\n]{0,30}\b(?:instructies|regels|aanwijzingen)\b",
)
_COMPILED = tuple(re.compile(p, re.IGNORECASE) for p in _PATTERNS)


# The gate: the classifier costs 7-17 ms of CPU per text on these machines, too much for
# every tracking turn. A text with none of these words or marks (trigger words, roles,
# instructions, other people's data, code and markup, in English, German, French, Spanish
# and Dutch) is scored 0 without it. Built on the DEV attacks (2 of 421 pass it); on the
# held-out attacks 8 of 178 pass it, and about a quarter of ordinary customer messages
# go on to the classifier (docs/guardrails.md).
_GATE_WORDS = (
    r"ignor\w*|disregard\w*|forget\w*|forgot|overrid\w*|bypass\w*|pretend\w*|"
    r"act(?:ing)? as|role\w*|persona|jailbreak\w*|dan|developer|dev mode|mode|"
    r"admin\w*|system\w*|prompt\w*|instruct\w*|rules?|guideline\w*|directive\w*|"
    r"approv\w*|authori[sz]\w*|without (?:any )?(?:check|verif)\w*|you are|you're|"
    r"youre|from now on|new task|no longer|reveal\w*|repeat\w*|print\w*|verbatim|"
    r"above|previous\w*|prior|earlier|secret\w*|confidential|hidden|canary|marker|"
    r"database|customers|every order|all orders|list all|dump\w*|export\w*|"
    r"translat\w*|poem|story|hypothetical\w*|imagin\w*|assistant|ai|a\.i\.|chatgpt|"
    r"gpt|llm|model|bot|respond\w*|answer\w*|reply|say|tell me|output\w*|write|"
    r"fraud\w*|internal|agent|escalat\w*|policy|policies|refund\w*|override|execute|"
    r"command\w*|code|terminal|script|tool|function|token\w*|password\w*|"
    r"credential\w*|key|note to|attention|important|urgent|must|shall|always|never|"
    r"do not mention|stop|end|begin|start|\bnow\b|vergiss\w*|vergessen|anweisung\w*|"
    r"befehl\w*|regel\w*|stell dir vor|du bist|tu so|rolle|geheim\w*|vorherig\w*|oben|"
    r"ausgabe|schreib\w*|antwort\w*|sag\w*|ignorier\w*|oubli\w*|consigne\w*|règle\w*|"
    r"système|tu es|vous êtes|imagin\w*|fais comme|rôle|précédent\w*|répon\w*|écri\w*|"
    r"dis|olvid\w*|instruccion\w*|regla\w*|sistema|eres|finge\w*|rol|secreto|"
    r"anterior\w*|respond\w*|escrib\w*|negeer\w*|vergeet|instructie\w*|regels|systeem|"
    r"je bent|stel je voor|doe alsof|vorige|antwoord\w*|schrijf\w*|zeg|address\w*|"
    r"adress\w*|adres|direcci\w+|phone\w*|telefon\w*|telefoon\w*|e-?mail\w*|records?|"
    r"details|datos|daten|gegevens|recipient\w*|empf\w+|customers?|client\w*|klant\w*|"
    r"kunde\w*|driver|other|else|anderen?|otros?|neighbou?r\w*|buurman|nachbar\w*|"
    r"vecin\w*|voisin\w*|police|officer|official|compensation|not delivered|raw|json|"
    r"api|audit|objective|ojbective|headline|untrue|unwahre?|offensive|"
    r"make something up|trained|actors?|schauspieler\w*|film|movie|scene|szene|"
    r"hauptrolle|bist du|jetzt|ab jetzt|manifest|verfasse\w*|formul\w*|state that|"
    r"zaboravi\w*|achtung|don't tell|dont tell|anyone|muéstrame|muestrame|repite|"
    r"palabra|kein assistent|einschränkung\w*|freigeschaltet|who else|other parcels|"
    r"aprueba|reembolso\w*|nota para"
)
_GATE_MARKS = r"berschrift\b|```|<!--|-->|\[|\]|###|\{|\}|\u200b|\|"  # "(Ü|ue)berschrift"


def _alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of ``pattern`` (split at ``|`` outside groups)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*out, pattern[start:]]


def _by_first_letter(words: str) -> str:
    """``words`` (an alternation) factored by first letter: ``a(?:pi|udit)|b(?:ot)``.
    It matches exactly where the plain alternation does; Python's ``re`` would otherwise
    try each of the ~230 branches at every position (35 us a short message, now 5 us)."""
    groups: dict[str, list[str]] = {}
    rest = []
    for word in _alternatives(words):
        if word[:1].isalpha():
            groups.setdefault(word[0].lower(), []).append(word[1:])
        else:
            rest.append(word)
    return "|".join([f"{c}(?:{'|'.join(tails)})" for c, tails in sorted(groups.items())] + rest)


_GATE = re.compile(
    r"\b(?:" + _by_first_letter("".join(_GATE_WORDS)) + r")\b|" + _GATE_MARKS, re.IGNORECASE
)
_SPACED = re.compile(r"(?:\b\w ){5,}")  # "i g n o r e  a l l"
_WIDE = re.compile(r"[\uff01-\uff5e]")  # full-width letters


def gated(text: str) -> bool:
    """Whether ``text`` goes on to the classifier (see ``_GATE_WORDS``)."""
    return any(p.search(text) is not None for p in (_GATE, _SPACED, _WIDE))


def normalise_identifiers(text: str) -> str:
    """``text`` with every AWB, order id, SKU and rule code replaced by one fixed form: the
    score (and so the verdict) never depends on which identifier a customer typed, so it
    cannot tell one customer's parcel from a missing one."""
    spans = sorted(identifier_spans(text))
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        if start < last:
            continue
        out.append(text[last:start])
        out.append(_canonical(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _canonical(value: str) -> str:
    upper = value.upper()
    if upper.startswith("ORD"):
        return "ORD-00000000"
    if upper.startswith("SKU"):
        return "SKU-0000"
    if upper.startswith("W"):
        return "WB0000000000"
    return "CODE-0"


def pattern_hit(text: str) -> bool:
    """Whether a never-benign injection phrase occurs in ``text``."""
    return any(p.search(text) for p in _COMPILED)


def locate_model(root: Path) -> Path:
    """The current classifier directory under ``root`` (the model dir)."""
    family = root / FAMILY
    try:
        key = json.loads((family / "current.json").read_text())["key"]
    except (OSError, ValueError, KeyError) as exc:
        raise FileNotFoundError(
            f"the injection classifier is not trained under {family} ({exc}); run "
            "scripts/setup.sh (or python -m guardrails.train_injection)"
        ) from None
    directory = family / str(key)
    if not (directory / "model.onnx").is_file():
        raise FileNotFoundError(f"{directory}/model.onnx is missing; run scripts/setup.sh")
    return directory


BLOCK_SCORE = 0.85
"""Where the score scale puts the block threshold (seed 004's default)."""


def calibrate(probability: float, block_at: float) -> float:
    """Map a raw (averaged) probability onto the scale the thresholds are written in: the
    raw value ``block_at`` (cross-fitted at setup, ``guardrails.train_injection``) becomes
    ``BLOCK_SCORE``; below and above it the map is linear, so order is kept."""
    if probability < block_at:
        return BLOCK_SCORE * probability / block_at
    return BLOCK_SCORE + (1.0 - BLOCK_SCORE) * (probability - block_at) / (1.0 - block_at)


class InjectionModel:
    """The trained classifier: texts -> raw probability of injection, the average of the
    fine-tuned encoder (ONNX) and the n-gram regression (``guardrails.lexical``)."""

    def __init__(self, directory: Path, *, threads: int = 1, quantized: bool = True) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning after each run: spinning bought ~1 ms
        # per classified text and cost a core's worth of CPU the rest of the mesh needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # int8 MatMul weights: about half the time of fp32 here, the same verdicts on the
        # held-out data (docs/guardrails.md).
        path = directory / (INT8_FILE if quantized else FP32_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run scripts/setup.sh")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = TextTokenizer(directory / "tokenizer.json", max_length=MAX_TOKENS)
        lexical = directory / LEXICAL_FILE
        if not lexical.is_file():
            raise FileNotFoundError(f"{lexical} is missing; run scripts/setup.sh")
        self._lexical = LexicalModel.load(lexical)
        self.version = directory.name
        try:
            meta = json.loads((directory / "model.json").read_text())
        except (OSError, ValueError):
            meta = {}
        self.block_at = float(meta.get("block_at", BLOCK_SCORE))
        """The raw probability that maps to ``BLOCK_SCORE``."""

    def encoder_probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The fine-tuned encoder's probability of injection of each text."""
        enc = self._tokenizer.encode(texts)
        (out,) = self._session.run(
            None,
            {
                "input_ids": enc.input_ids,
                "attention_mask": enc.attention_mask,
                "token_type_ids": enc.token_type_ids,
            },
        )
        return np.asarray(out, dtype=np.float32)

    def lexical_probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The n-gram regression's probability of injection of each text (~0.2 ms a text)."""
        return np.asarray(self._lexical.probabilities(texts), dtype=np.float32)

    def probabilities(
        self, texts: Sequence[str], lexical: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        """Raw probability of injection of each text (both halves averaged); ``lexical``:
        the n-gram half's, when the caller has it already."""
        if not texts:
            return np.zeros(0, np.float32)
        encoder = self.encoder_probabilities(texts)
        if lexical is None:
            lexical = self.lexical_probabilities(texts)
        return (encoder + lexical) / np.float32(2.0)


@dataclass(frozen=True, slots=True)
class Score:
    """An injection score and where it came from."""

    score: float
    pattern: bool
    classified: bool = True
    """Whether the classifier ran (False: the gate found nothing to classify)."""
    bound: bool = False
    """The score is an upper bound: the n-gram half alone kept the text under the block
    point whatever the encoder would have said, so the encoder did not run."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A text whose verdict needs the encoder: what it reads and the n-gram half's
    probabilities of those windows (``InjectionScorer.triage``)."""

    windows: list[str]
    lexical: npt.NDArray[np.float32]


class InjectionScorer:
    """Scores texts: max(classifier, patterns)."""

    TAIL_CHARS = 600
    """A text longer than this is also scored on its last characters (an instruction
    appended after a long harmless text is not cut away by truncation)."""

    def __init__(self, model: InjectionModel) -> None:
        self._model = model

    @property
    def version(self) -> str:
        """The classifier's training key."""
        return self._model.version

    def score_many(self, texts: Sequence[str]) -> list[Score]:
        """Scores of ``texts``."""
        if not texts:
            return []
        windows: list[str] = []
        owners: list[int] = []
        for i, raw in enumerate(texts):
            if not gated(raw):
                continue
            mine = self._windows(raw)
            windows += mine
            owners += [i] * len(mine)
        probs: Sequence[float] = self._model.probabilities(windows).tolist() if windows else []
        best = [0.0] * len(texts)
        for owner, p in zip(owners, probs, strict=True):
            best[owner] = max(best[owner], calibrate(float(p), self._model.block_at))
        ran = set(owners)
        out = []
        for i, (text, p) in enumerate(zip(texts, best, strict=True)):
            if i not in ran:
                out.append(self.ungated(text))
                continue
            hit = pattern_hit(text)
            out.append(Score(1.0 if hit else p, hit))
        return out

    def _windows(self, text: str) -> list[str]:
        """What the classifier reads of ``text``: all of it (truncated to the model's
        length) and, for a long text, its last ``TAIL_CHARS`` too."""
        text = normalise_identifiers(text)
        return [text, text[-self.TAIL_CHARS :]] if len(text) > self.TAIL_CHARS else [text]

    def triage(self, text: str, block_score: float) -> Score | Pending:
        """The score of ``text`` when it can be had without the encoder, else what
        :meth:`finish` needs to run it.

        Ungated text scores by the patterns alone, a never-benign phrase scores 1.0, and
        where the n-gram half is low enough that the average stays under ``block_score``
        even with the encoder at 1.0 (the average is at most ``(lexical + 1) / 2``), the
        verdict is already known: the score is that upper bound (``Score.bound``). The
        verdict is always the one :meth:`score` gives; most benign messages with trigger
        words end here, at a fifth of the encoder's cost."""
        if not gated(text):
            return self.ungated(text)
        if pattern_hit(text):
            return Score(1.0, True)
        windows = self._windows(text)
        lexical = self._model.lexical_probabilities(windows)
        highest = calibrate((float(lexical.max()) + 1.0) / 2.0, self._model.block_at)
        if highest < block_score:
            return Score(highest, False, bound=True)
        return Pending(windows, lexical)

    def finish(self, pending: Pending) -> Score:
        """The full score of a text :meth:`triage` could not settle (the encoder runs; the
        n-gram half is not computed again)."""
        probs = self._model.probabilities(pending.windows, pending.lexical)
        return Score(max(calibrate(float(p), self._model.block_at) for p in probs), False)

    @staticmethod
    def ungated(text: str) -> Score:
        """The score of a text the gate lets skip the classifier (the caller has run
        :func:`gated`): the patterns alone."""
        hit = pattern_hit(text)
        return Score(1.0 if hit else 0.0, hit, classified=False)

    def score(self, text: str) -> Score:
        """The score of one text."""
        return self.score_many([text])[0]
