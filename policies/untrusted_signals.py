"""The signals ``policies.untrusted`` reads, as data: who a text addresses, what overrides the
dialogue, what poses as a turn or the system, and the directives around them. Each pattern is
(kind, weight, keys, (before, after), regex); see ``policies.untrusted`` for how they combine.

Patterns are written lowercase and run on the lowercased text (a "(?-i:" part reads case on the
text as written), and most start on a literal so the regex engine can skip ahead: the word
boundary before a match is checked after it.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple


class Signal(NamedTuple):
    kind: str
    weight: int
    keys: tuple[str, ...]      # every match holds one of these (a word, or a mark for the punctuation-led)
    reach: tuple[int, int]     # how far a match reaches before and after its key
    pattern: str
    needs: tuple[str, ...] = ()  # and the text holds one of these words too, or the pattern cannot match
    holds: str = ""  # a pattern every match holds, cheaper (led by a character class): looked for first

MODEL = (r"(?:ai|a\.i\.|llms?|large\s+language\s+models?|language\s+models?|ai\s+(?:assistant|agent|model|system)s?"
          r"|(?:virtual|digital)\s+assistants?|chat\s?bots?|gpt[-\s]?\d[\w.-]*|chatgpt|claude|gemini|llama|copilot"
          r"|mistral|mixtral|qwen[\w.-]*|deepseek[\w.-]*|grok|command[-\s]r\+?|ai\s+models?\s+developed\s+by\s+\w+)")
VERBS = ("send", "transfer", "wire", "pay", "forward", "email", "e-mail", "message", "post", "publish", "share", "upload",
          "download", "invite", "add", "remove", "delete", "erase", "change", "update", "modify", "edit", "reset", "set",
          "grant", "create", "schedule", "book", "cancel", "visit", "open", "click", "go to", "navigate", "browse", "call",
          "run", "execute", "install", "reply", "respond", "answer", "write", "concatenate", "copy", "export", "give",
          "tell", "say", "print", "output", "reveal", "ignore", "disregard", "forget", "stop", "do", "perform", "follow",
          "include", "append", "insert", "leak", "buy", "purchase", "order", "approve", "accept", "transmit", "use",
          "invoke", "fetch", "retrieve", "collect", "summarize", "summarise", "read", "find", "list", "switch",
          "upgrade", "downgrade", "subscribe", "unsubscribe", "enable", "disable", "confirm", "submit", "apply",
          "refund", "move", "rename", "save", "mark", "assign", "close", "sign", "check", "verify", "look")


def trie(words: Iterable[str]) -> str:
    """One regex for many words, factored by shared prefixes: a failed match costs a few steps, not
    one per word."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body
    return build(root)


# Where a line starts: a real line break, the "\n" of JSON text, or the quote that opens a JSON string.
LINE_START = r"(?:(?m:^)|(?<=\\n)|(?<=\"))"
NAME_ENDS = r"(?=\s*(?:[,:;.!?)\]\n]|$|(?:who|that|reading|processing|parsing|handling)\b))"
# Every match of a strong pattern holds one of its keys: a whole word (letters only, lowercase),
# or for the punctuation-led patterns the mark (MARKS). The words of a text are read once, as a
# set, in C; a pattern runs only around the places of its keys present in the text.
MODEL_WORDS = ("ai", "llm", "llms", "language", "assistant", "assistants", "chatbot", "chatbots", "bot", "gpt",
                "chatgpt", "claude", "gemini", "llama", "copilot", "mistral", "mixtral", "qwen", "deepseek", "grok")
TASKS = ("task", "tasks", "instruction", "instructions", "prompt", "prompts", "goal", "objective", "mission",
          "directive", "directives", "orders", "assignment", "query")
ROLES = ("system", "assistant", "user", "human", "developer", "admin")

_QUALIFIER = r"(?:(?:previous|prior|above|earlier|preceding|former|original|initial|existing|current|other|old|system|user'?s?|given)\s+)"
_STEM = r"[a-z]*(?:struct|prompt|direction|directive|command|rule|guideline|task|context|constraint|programming|guardrail)[a-z]*\b"
# Signals that the text addresses the assistant or overrides the dialogue. A passage needs 3 weight
# of these (untrusted.instruction_spans).
STRONG: list[Signal] = [
    # A vocative: "to you, GPT-4.", "Hey ChatGPT,", "Note for the AI assistant processing this:". The
    # name ends the phrase (punctuation, or what it is doing): "for the AI team", "Dear AI
    # enthusiasts" and "Thank you, AI team" name people.
    Signal("address", 3, MODEL_WORDS, (60, 60),
     # (each alternative led by its own first letter: the regex engine skips to one of them)
     rf"(?:t(?:o\s+you\s*,?)|f(?:or\s+you\s*,?)|h(?:ey|i|ello)|dear|a(?:ttention|ttn)|n(?:ote\s+(?:to|for))"
     rf"|m(?:essage\s+(?:to|for))|i(?:nstructions?\s+(?:to|for)))\s*,?\s+(?:you\s*,?\s+)?(?:the\s+|an?\s+|all\s+|any\s+)?{MODEL}{NAME_ENDS}", needs=("you", "hey", "hi", "hello", "dear", "attention", "attn", "note", "message", "instruction", "instructions")),
    # "to you, GPT-4.", "to you, Local model.": a model's name may be anything before "model".
    Signal("address", 3, MODEL_WORDS + ("model",), (40, 60),
           rf"you\s*,\s*(?:the\s+|an?\s+|my\s+)?(?:{MODEL}|(?:[\w.-]+\s+){{0,2}}(?:model|assistant|bot|ai|llm)){NAME_ENDS}",
           needs=("you",)),
    Signal("command", 2, MODEL_WORDS, (40, 60),  # "Hey ChatGPT, send ...", "Dear AI, quietly pay ...": the vocative and its order
     rf"(?:h(?:ey|i|ello)|dear|o(?:k|kay)|attention)\s*,?\s+(?:the\s+)?{MODEL}\s*[,:]\s*(?:(?:please|kindly|now|just|quietly|silently|secretly|immediately)\s+){{0,2}}"
     rf"{trie(VERBS)}\b", needs=("hey", "hi", "hello", "dear", "ok", "okay", "attention")),
    Signal("address", 3, MODEL_WORDS + ("agent",), (40, 30),
     r"if\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|language\s+model|ai\s+assistant|assistant|chat\s?bot|bot|agent|gpt)\b", needs=("if",)),
    Signal("address", 3, MODEL_WORDS + ("agent", "model"), (20, 60),
     rf"\b(?:{MODEL}|the\s+assistant|the\s+agent|the\s+model|the\s+bot)\s+(?:who\s+is\s+|that\s+is\s+)?"
     r"(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|handling)\s+(?:this|these)\b", needs=("reading", "processing", "parsing", "summarizing", "summarising", "analyzing", "analysing", "handling"),
     holds=r"\s(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|handling)\s+(?:this|these)\b"),
    Signal("command", 2, MODEL_WORDS + ("agent", "model"), (20, 40),
     rf"\b(?:the\s+|an?\s+)?(?:{MODEL}|assistant|agent|model|bot)\s+(?:must|should|shall|needs\s+to|has\s+to|is\s+(?:required|instructed|expected)\s+to|will\s+now)\b", needs=("must", "should", "shall", "needs", "has", "is", "will"),
     holds=r"\s(?:must|should|shall|needs\s+to|has\s+to|is\s+(?:required|instructed|expected)\s+to|will\s+now)\b"),
    Signal("override", 3, ("ignore", "disregard", "forget", "override", "overrule", "bypass", "abandon"), (5, 150),
     # "ignore all/your/the previous instructions", "disregard the instructions above"; not a bare
     # "ignore rules" or "ignore the rules" (a feature, a game). The noun by stem, so a misspelt
     # "iunstructions" counts; "orders" is not one ("ignore the previous order confirmation").
     rf"(?:ignore|disregard|forget|override|overrule|bypass|abandon)\s+(?:(?:all|any|every|your)\s+(?:(?:of\s+)?(?:the|your)\s+)?"
     rf"{_QUALIFIER}{{0,2}}|(?:the\s+|these\s+|those\s+)?{_QUALIFIER}{{1,2}}|(?:the\s+)?(?={_STEM}\s+(?:above|before|so\s+far|you\s+(?:were|have\s+been)\s+given)))"
     rf"{_STEM}"),
    # "the task I gave you", "your new task", "new instructions:" may be said to a person too ("did you
    # finish the task I gave you?"): 2, so another sign must say the reader is the assistant.
    Signal("override", 2, ("task",), (15, 60), r"task\s+(?:that\s+)?(?:i|the\s+user|they|we|he|she|was)\s+(?:have\s+)?"
                               r"(?:gave|given|assigned|set|asked)\s+(?:to\s+)?you\b", needs=("gave", "given", "assigned", "set", "asked")),
    # "before you solve the task", "instead of completing the user's task": one pattern for each
    # first word, so the regex engine skips to it (an alternation there is tried at every character)
    *(Signal("override", 2, TASKS, (120, 10),
             rf"{lead}\s+(?:you\s+)?(?:can\s+|could\s+|may\s+)?(?:solv|complet|answer|finish|do|continu|proceed|perform"
             r"|respond|execut|start)\w*\s+(?:with\s+)?(?:the|your|my|the\s+user'?s)\s+(?:(?:original|initial|current"
             r"|actual|first|given|assigned)\s+)?(?:task|instructions?|prompt|goal|assignment|query)\b", needs=(need,))
      for lead, need in (("before", "before"), (r"instead\s+of", "instead"))),
    Signal("override", 2, TASKS, (40, 10), r"your\s+(?:new|real|actual|true|updated|primary|only|revised)\s+(?:task|instructions?|goal|objective|mission|directive|prompt|orders)\b", needs=("your",)),
    Signal("override", 2, TASKS, (10, 20), r"new\s+(?:instructions?|task|directives?|orders)\s*[:!]", needs=("new",)),
    Signal("override", 3, ("stop",), (5, 60), r"stop\s+(?:what\s+you(?:'re|\s+are)\s+doing|(?:all\s+)?(?:your\s+)?current\s+(?:task|work)|everything\s+you(?:'re|\s+are)\s+doing)", needs=("doing", "current")),
    # Naming the system prompt or a developer mode speaks as the system does (a "System:" line is the
    # same sign, counted once); it orders nothing by itself ("the system prompt guidelines are due").
    Signal("speaker", 2, ("system", "developer"), (5, 30), r"(?:system|developer)\s+(?:prompt|message|instructions?|override|mode)\b"),
    Signal("override", 3, ("longer",), (20, 40), r"you\s+are\s+no\s+longer\s+(?:bound|restricted|limited|an?\s+(?:ai|assistant))", needs=("no",)),
    # Keeping something from the user is 2, not 3: a product spec may well say "it signs in without
    # asking the user"; with a sign that the text speaks to the assistant, it is an order.
    Signal("secrecy", 2, ("user", "human"), (80, 10),
     r"(?:(?:do\s+not|don'?t|never|without)\s+(?:tell|inform|notify|alert|mention|reveal|show|let)|without\s+(?:ask|confirm|consult))\w*"
     r"\s+(?:(?:it|this|that|anything)\s+)?(?:to\s+|with\s+)?(?:the\s+user|the\s+human|your\s+user)\b", needs=("not", "don", "dont", "never", "without")),
    Signal("secrecy", 3, ("mention", "reveal", "disclose", "repeat", "acknowledge", "reference"), (15, 40),
     r"(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose|repeat|acknowledge|reference)\s+(?:this|these|the)\s+"
     r"(?:instructions?|message|note|request)\b", needs=("not", "don", "dont", "never")),
    Signal("role", 3, ("<|", "[inst", "[/inst", "<<"), (5, 30),
     r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\s*\|?>|\[/?inst\]|<</?sys>>|<start_of_turn>"),
    Signal("role", 3, ("##",), (5, 60), r"#{2,}\s*\(?\s*(?:system|assistant|user|human|developer|admin)(?:[_\s](?:message|prompt|note|override|instructions?))?\s*\)?\s*(?::|\)|$)"),
    Signal("role", 3, ROLES, (5, 30), r"\[(?:system|assistant|user|developer|admin)\]\s*(?:\(#[\w-]+\)|:)"),
    Signal("role", 2, ("<",), (5, 60), r"<\s*/?\s*(?:system|assistant|admin|developer|sys|instructions?|important|information|secret|hidden|prompt|"
                       r"(?:user|new|system|ai|agent|assistant)[_-]?(?:instructions?|prompt|message|note))\s*>"),
    # A speaker or a user says words ("Thanks!", "cancel it"; a speaker three words or a sentence):
    # "System: Spotify Premium" and "User: '54.20'" are a record's fields, not turns.
    Signal("speaker", 2, ("system", "assistant", "admin", "developer", "ai"), (10, 60),
     rf"{LINE_START}[ \t>*_#-]{{0,4}}(?-i:SYSTEM|ASSISTANT|ADMIN|DEVELOPER|System|Assistant|Developer|AI(?:\s+(?:agent|assistant|model))?)"
     r"(?:\s+(?i:message|note|prompt|instructions?|override))?\s*:[ \t]+(?=[^\W\d_](?:\S*[ \t]+\S+[ \t]+\S|[^\n]{0,80}?[.!?,;](?=\s|$)))"),
    # A user's turn inside data counts only beside another sign; a transcript (two user turns or
    # more) is real data, and then neither its user nor its speaker lines count (untrusted._by_kind).
    Signal("turn", 1, ("user", "human"), (10, 10), rf"{LINE_START}[ \t>*_#-]{{0,4}}(?-i:USER|HUMAN|User|Human)\s*:[ \t]+(?=[^\W\d_]\S*(?:[ \t]+\S|[.!?]))"),
    Signal("tool", 2, ("arguments", "argument", "parameters", "args", "inputs"), (200, 10),
     r"(?:use|call|invoke|run|execute|trigger)\s+(?:the\s+)?(?:`[\w.-]+`\s+|[\w.-]+\s+)?(?:tool|function)s?\b"
     r"[^.\n]{0,80}\b(?:with|using)\s+(?:the\s+)?(?:following\s+)?(?:arguments|parameters|args|inputs)\b", needs=("use", "call", "invoke", "run", "execute", "trigger")),
    # "---END OF DATA---": the text poses as the frame around the data, as a turn or a system line does.
    Signal("boundary", 2, ("end",), (10, 80), r"(?:end\s+of|---\s*end)\s+(?:the\s+)?(?:data|document|context|input|tool\s+"
           r"(?:output|result)|email|content|search\s+results?)\b",
           needs=("data", "document", "context", "input", "tool", "email", "content", "search")),
    Signal("exfil", 3, ("![",), (5, 250), r"!\[[^\]\n]{0,60}\]\(\s*https?://[^)\s]{0,120}?[?&=/](?:\{|\[|<|\$\{?|%7b)[^)\s]{0,60}\)"),
]
# The marks that start the punctuation-led patterns; a "<" counts only before a role-like word.
MARKS = re.compile(r"<(?=\s*/?\s*(?:sys|ass|adm|dev|ins|imp|inf|sec|hid|pro|use|new|ai|age))|<\||<<|##|!\[|\[/?inst")
# Letters stay, everything else splits words: bytes.translate and split run in C.
WORD_BYTES = bytes(c if 97 <= c <= 122 or c >= 128 else 32 for c in range(256))

# What surrounds a strong signal, read only near one: directives ("you must"), the urgency and the
# third-person "the user" injections use, exfiltration links. An imperative at a sentence's start
# is found separately (IMPERATIVE).
WEAK: list[Signal] = [
    Signal("directive", 1, ("you",), (5, 60), r"you\s+(?:must|should|need\s+to|have\s+to|are\s+(?:required|instructed|asked|expected|supposed)\s+to|will\s+now|shall)\b"),
    Signal("directive", 1, ("following", "please"), (40, 30),
     rf"(?:do|perform|complete|execute|follow)\s+the\s+following\b|please\s+(?:make\s+sure|ensure|{trie(VERBS)})\b"),
    Signal("urgency", 1, ("important", "urgent", "immediately", "mandatory", "critical", "asap", "!!"), (5, 5),
     r"(?:important|urgent(?:ly)?|immediately|mandatory|critical|asap)\b|!{2,}"),
    Signal("about_user", 1, ("the user",), (5, 10), r"the\s+user(?:'s)?\b"),
    Signal("exfil", 2, ("http",), (10, 250), r"https?://\S{0,200}?[?&=/](?:\{|\[|<|\$\{?|%7b)[A-Za-z_ ]{1,40}"),
    Signal("exfil", 2, ("url", "link", "query", "parameter", "image"), (120, 40),
     r"(?:append|add|include|insert|encode|put|attach|embed)\b[^.\n]{0,80}\b(?:to|in|into|as)\s+(?:the\s+|a\s+|this\s+)?"
     r"(?:url|link|query(?:\s+string)?|parameter|image\s+(?:url|link|source))\b"),
]
# A sentence starts at the text's start, after end punctuation, a line break (real or the "\n" of
# JSON text) or a quote (a JSON value); bullets, a number and "please" may stand before its verb.
BLANK_LINE = re.compile(r"\n[ \t]*\n|\\n[ \t]*\\n")  # in JSON text too
SHORT_LINE = 40  # a line this short is a heading or a label, not part of a wrapped paragraph
BULLET = re.compile(r"[ \t]*(?:[-*•>]|\d{1,2}[.)])[ \t]")
LEAD = (r"[ \t\"'*_>•-]*(?:\d{1,2}[.)]\s*)?(?:(?:please|kindly|now|then|first|also|next|immediately|just|and|quietly"
         r"|silently|secretly)\s*,?\s+)*")
IMPERATIVE = re.compile(rf"{LEAD}{trie(VERBS)}\b")
# (led by one character class, a backslash only before "n", so the regex engine skips to it)
IMPERATIVE_AFTER = re.compile(rf"[.!?:;\n>\])•\"'\\](?:(?<=\\)n|(?<=[^\\]))({LEAD}{trie(VERBS)}\b)")
