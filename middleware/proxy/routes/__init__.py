"""The wire formats rein answers, one ``Route`` type (route.py) and its instances: chat.py
(OpenAI Chat Completions), responses.py (OpenAI Responses), messages.py (Anthropic Messages).
A protocol's request mapping is ``<protocol>_map.py``, its reply (whole and streamed) ``<protocol>_reply.py``."""
