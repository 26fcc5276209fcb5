"""A detector of prompt injection hidden in documents: a transparent, tested rule set.

Why rules and not a classifier: the public prompt-injection classifiers (ProtectAI's
DeBERTa models, llm-guard, rebuff, vigil) fetch their weights from the Hugging Face hub or
call a service at run time; none ships them on PyPI, and nothing here may download. A rule
set is also readable: each rule is named, weighted and tested, and a verdict says which
rules fired, so an operator can see why a passage was flagged.

How it scores. The text is normalised first (NFKC, case-folded, zero-width and other
format characters removed, whitespace collapsed), so "I g n o r e" spacing, fullwidth
letters and zero-width joiners do not evade it. Each rule that matches adds its weight;
the score is 1 - prod(1 - w) over the rules that fired (two weak signals make a strong
one), and a passage is flagged at `threshold`. Text that *reports* an attack ("attackers
write 'ignore previous instructions'") rather than making one is discounted: the phrase
inside quotes, or after "for example", "such as", "e.g.", "known as", loses most of its
weight. Only the first `MAX_CHARS` characters of a passage are examined (chunks are far
shorter); every pattern is linear in the text (no nested quantifiers).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

#: Characters examined per passage (a chunk is ~600; this bounds a hostile one).
MAX_CHARS = 20_000

_FORMAT_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cn"})
_SPACES = re.compile(r"\s+")
# "i g n o r e  a l l" -> "ignore all": single letters one space apart are one word
# (joined before whitespace is collapsed, so wider gaps still separate the words).
_SPACED_LETTERS = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")

_OVERRIDE = r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect)"
_PRIOR = (
    r"(?:all |any |the |your |these |those |every )*"
    r"(?:previous|prior|above|earlier|preceding|original|initial|system|existing|former)"
)
_NOUN = (
    r"(?:instructions?|rules?|prompts?|directions?|guidelines?|directives?|constraints?"
    r"|context|commands?|programming|guardrails?)"
)
_AI = r"(?:ai|llm|assistant|language model|chatbot|model|bot|chatgpt|claude|gpt)"


def _rule(name: str, weight: float, *alternatives: str) -> tuple[str, float, re.Pattern[str]]:
    return name, weight, re.compile("|".join(alternatives))


#: (name, weight, pattern) on the normalised text.
_RULES: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    # "Ignore all previous instructions", "disregard the above rules", and friends.
    _rule("override", 0.85, rf"\b{_OVERRIDE} {_PRIOR} {_NOUN}\b"),
    _rule(
        "override",
        0.75,
        rf"\b{_OVERRIDE} (?:everything|all|anything) "
        r"(?:you (?:were|have been) told|above|before|said)\b",
    ),
    # The same in Spanish, French, German.
    _rule(
        "override-i18n",
        0.8,
        r"\b(?:ignora|olvida) (?:todas? )?(?:las |los )?(?:instrucciones|reglas) "
        r"(?:anteriores|previas)",
        r"\b(?:ignore[zr]?|oublie[zr]?) (?:toutes )?les (?:instructions|consignes|r[eè]gles) "
        r"(?:pr[eé]c[eé]dentes|ci-dessus)",
        r"\b(?:ignoriere|vergiss) (?:alle )?(?:vorherigen|bisherigen|obigen) "
        r"(?:anweisungen|regeln|instruktionen)",
    ),
    # Persona hijack: "you are now DAN", "act as an unrestricted AI", "developer mode".
    _rule(
        "persona",
        0.6,
        r"\byou are now (?:an? |the |dan\b|my |free\b|unrestricted|unfiltered|jailbroken"
        r"|in \w+ mode)",
        r"\byou are no longer (?:bound|restricted|limited|an? (?:ai|assistant))",
        r"\bfrom now on,? you (?:are|will|must|shall) (?:an? |the |act|answer|respond|reply|only"
        r"|ignore|always|never)",
    ),
    _rule(
        "persona",
        0.7,
        r"\b(?:act|behave|pretend|roleplay) (?:as|to be|you are|that you are) (?:an? )?"
        r"(?:unrestricted|unfiltered|uncensored|jailbroken|evil|dan\b)",
    ),
    _rule(
        "jailbreak",
        0.7,
        r"\b(?:god|jailbreak|dan) mode\b",
        r"\bdeveloper mode (?:enabled|activated|output|response)",
        r"\bdo anything now\b",
    ),
    # Asking for the system prompt or hidden instructions.
    _rule(
        "exfiltrate-prompt",
        0.75,
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell me|write out|dump|disclose) "
        r"(?:me )?(?:your|the) (?:full |entire |original |hidden |secret )*"
        r"(?:system prompt|initial prompt|hidden instructions|system message)",
        r"\b(?:reveal|print|repeat|output|leak|dump|disclose) (?:all )?your "
        r"(?:instructions|prompt|rules|configuration)",
    ),
    # Chat-template and role tokens inside a document.
    _rule(
        "role-token",
        0.75,
        r"<\|(?:im_start|im_end|system|assistant|user|begin_of_text|start_header_id|endoftext)\|>",
        r"\[/?inst\]",
        r"<</?sys>>",
    ),
    _rule(
        "role-header",
        0.55,
        r"(?:^|[.!?] |\n)#{1,4} ?(?:system|assistant|instruction|new instructions?) ?:",
        r"(?:^|[.!?] )(?:system|assistant) ?: ?(?:you|ignore|from now|new)",
    ),
    _rule("fake-tag", 0.6, r"</?(?:system|instructions?|admin|prompt)>"),
    # Addressed to the model reading the document.
    _rule(
        "addressed-to-ai",
        0.6,
        rf"\b(?:note|message|instructions?|attention) (?:to|for) (?:the |any )?{_AI}\b",
        rf"\b(?:dear|hey|hello) {_AI}\b",
        r"\bif you are an? (?:ai|llm|language model|assistant|chatbot)\b",
        r"\b(?:ai|llm|assistant|language model)s? "
        r"(?:reading|processing|summari[sz]ing) (?:this|these)\b",
    ),
    _rule(
        "new-instructions",
        0.55,
        r"(?:^|[.!?] )(?:new|updated|real|actual|true|important|secret|hidden) "
        r"(?:instructions?|directives?|task|orders) ?:",
    ),
    # Making the model act: send, fetch, call, execute.
    _rule(
        "tool-call",
        0.5,
        r"\b(?:call|invoke|execute) the \w+_\w+ (?:function|tool|plugin)\b",
        r"\buse the (?:browser|e-?mail|search|code|shell|python) tool\b",
        r"\bsend (?:an? )?(?:e-?mail|message) to \S+ (?:with|containing) (?:the |this |our |your )?"
        r"(?:conversation|chat|history|data|summary|password|credentials)",
        r"\bsend (?:the )?(?:conversation|chat history|credentials|password) to\b",
        r"\b(?:curl|wget) https?://",
    ),
    # Exfiltration through a rendered image carrying data in its URL.
    _rule(
        "markdown-exfil",
        0.8,
        r"!\[[^\]\n]{0,200}\]\(https?://[^)\s]{0,300}[?&][^)\s=]{1,40}=(?:\{|%7b|\$|\[)",
    ),
    _rule(
        "markdown-exfil",
        0.5,
        r"!\[[^\]\n]{0,200}\]\(https?://[^)\s]{0,300}"
        r"\b(?:data|q|query|secret|prompt|conv|chat|history|user)=",
    ),
    # Directives to lie, hide or override the user.
    _rule(
        "deceive",
        0.5,
        r"\b(?:do not|don't|never) (?:tell|inform|mention|reveal)(?: this)? (?:to )?the user\b",
        r"\binstead,? (?:respond|answer|reply|say|output) (?:only )?(?:with|that)\b",
        r"\b(?:respond|answer|reply) only with\b",
        r"\bwithout (?:telling|informing|warning) the user\b",
    ),
    # Text built to be invisible to people: HTML comments holding directives.
    _rule(
        "hidden-comment",
        0.5,
        r"<!--[^>]{0,500}\b(?:ignore|instruction|assistant|system|you must|you are)\b",
    ),
)

#: Discussion rather than directive: the phrase is quoted or given as an example.
_REPORTED = re.compile(
    r"(?:for example|for instance|such as|e\.g\.|known as|called|like|phrases? (?:like|such as)|"
    r"attackers?|attacks?|adversar\w*|malicious|injection|payloads?|researchers?|"
    r"detect\w*|filter\w*|classif\w*|defen[cs]\w*|mitigat\w*|strings? like|text like)"
)
_QUOTES = "\"'“”‘’«»`"
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,400}={0,2}")


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float  # 0..1
    flagged: bool
    reasons: tuple[str, ...]  # the rules that fired


def normalise(text: str) -> str:
    """NFKC, case-folded, invisible characters out, whitespace collapsed, spaced-out
    letters joined."""
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold()
    text = "".join(
        " " if c in "\t\n\r\f\v" else c
        for c in text
        if unicodedata.category(c) not in _FORMAT_CATEGORIES or c in "\t\n\r\f\v"
    )
    text = _SPACED_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), text)
    return _SPACES.sub(" ", text)


def _reported(text: str, start: int) -> bool:
    """Is the match at `start` quoted, or preceded by a reporting phrase in its sentence?"""
    window = text[max(0, start - 120) : start]
    sentence = re.split(r"[.!?]\s", window)[-1]
    before = text[max(0, start - 2) : start]
    return any(q in before for q in _QUOTES) or _REPORTED.search(sentence) is not None


def _decoded(text: str) -> str:
    """Base64 blobs in the raw text, decoded when they hold readable text (bounded)."""
    found = []
    for blob in _BASE64.findall(text[:MAX_CHARS])[:20]:
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if decoded.isprintable():
            found.append(decoded)
    return " ".join(found)


class InjectionDetector:
    """`check` scores one passage; `check_many` a batch."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold

    def check(self, text: str) -> Verdict:
        normal = normalise(text)
        hidden = _decoded(text)
        fired: dict[str, float] = {}
        for name, weight, pattern in _RULES:
            for source, discount in ((normal, True), (normalise(hidden), False)):
                if not source:
                    continue
                match = pattern.search(source)
                if match is None:
                    continue
                w = weight * (0.25 if discount and _reported(source, match.start()) else 1.0)
                key = name if source is normal else f"{name}(base64)"
                fired[key] = max(fired.get(key, 0.0), w)
        remaining = 1.0
        for w in fired.values():
            remaining *= 1.0 - w
        score = round(1.0 - remaining, 4)
        return Verdict(score, score >= self.threshold, tuple(sorted(fired)))

    def check_many(self, texts: Sequence[str]) -> list[Verdict]:
        return [self.check(t) for t in texts]
