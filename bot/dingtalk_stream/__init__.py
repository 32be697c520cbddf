"""DingTalk Stream mode: a bridge process on DingTalk's SDK and a Rasa input channel.

DingTalk's Stream mode SDK (``dingtalk-stream``) needs aiohttp and websockets releases
that Rasa 3.6's pins refuse, so it runs in its own environment (``make dingtalk-stream``
builds ``.venv-stream``) as a small bridge that forwards each robot message to Rasa over
loopback HTTP, signed with a shared secret:

- :mod:`bot.dingtalk_stream.bridge` (``.venv-stream``): the SDK's client and handler;
- :mod:`bot.dingtalk_stream.forward` (``.venv-stream``; no SDK): the signed HTTP
  request to Rasa and what its answer means;
- :mod:`bot.dingtalk_stream.channel` (Rasa's environment): ``DingTalkStreamInput``,
  the Rasa input channel that checks the signature and answers with the replies;
- :mod:`bot.dingtalk_stream.signing` (standard library only): the shared-secret
  signature both sides use.

This ``__init__`` imports nothing: each environment imports only its own modules.
"""
