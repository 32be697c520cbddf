"""Whether a request really comes from WeChat, and what it says, through wechatpy.

WeChat signs every request to the server URL with the account's Token:
``signature = sha1(sorted(token, timestamp, nonce))`` in the query
(:func:`wechatpy.utils.check_signature`). In safe mode (安全模式) the body is
``<xml><ToUserName/><Encrypt/></xml>``: ``Encrypt`` is the message, AES-256-CBC
encrypted with the EncodingAESKey and ending with the AppID, and the query's
``msg_signature = sha1(sorted(token, timestamp, nonce, Encrypt))`` signs it.
:class:`wechatpy.crypto.WeChatCrypto` checks that signature, decrypts and compares
the AppID. Nothing here does crypto by hand.

The signatures cover the timestamp, so :func:`check_query` also refuses a timestamp
too far from our clock: a captured request cannot be replayed later. Within the
window, the channel's message-id cache (:mod:`bot.wechat.dedupe`) answers a replay
without handling it again.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bot.wechat.config import WeChatConfig

_DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() accepts "²"
# Safe-mode bodies are small (a text message is at most 2048 bytes before encryption).
MAX_BODY_BYTES = 64 * 1024


class WeChatRequestError(ValueError):
    """A request WeChat did not send, or one we cannot read.

    Attributes:
        status: The HTTP status to answer with (400, 401 or 413).
    """

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def check_query(query: Mapping[str, str], config: WeChatConfig, now: float) -> None:
    """Checks the signed query WeChat sends with every request.

    Args:
        query: The query parameters (``signature``, ``timestamp``, ``nonce``, and for
            messages in safe mode ``encrypt_type`` and ``msg_signature``).
        config: The channel's settings (the Token, the timestamp window).
        now: The current time (s since the epoch).

    Raises:
        WeChatRequestError: A parameter is missing or malformed, the timestamp is
            outside the window, or the signature is wrong (401).
    """
    signature, timestamp, nonce = (query.get(key) for key in ("signature", "timestamp",
                                                              "nonce"))
    if not signature or not timestamp or not nonce:
        # The SDK would sign a missing value as "": check presence ourselves.
        raise WeChatRequestError("missing 'signature', 'timestamp' or 'nonce'")
    if not _DIGITS.fullmatch(timestamp):
        raise WeChatRequestError("malformed 'timestamp'")
    # Both directions: a far-future timestamp would stay valid for a long time.
    if abs(now - int(timestamp)) > config.timestamp_window_s:
        raise WeChatRequestError("'timestamp' is outside the accepted window")
    try:
        check_signature(config.token, signature, timestamp, nonce)
    except InvalidSignatureException:
        raise WeChatRequestError("wrong 'signature'") from None


def decrypt(body: bytes, query: Mapping[str, str], config: WeChatConfig) -> str:
    """The message XML of a POST whose query :func:`check_query` accepted.

    In safe mode, WeChat's ``Encrypt`` envelope is checked against ``msg_signature``
    and decrypted by :class:`wechatpy.crypto.WeChatCrypto`, which also compares the
    AppID inside with ours. In plain mode the body is the message itself.

    Args:
        body: The request body.
        query: The request's query parameters.
        config: The channel's settings.

    Returns:
        The message as XML text (for :func:`bot.wechat.message.parse`).

    Raises:
        WeChatRequestError: The body is too large (413), not a safe-mode envelope
            (400), or its signature, encryption or AppID is wrong (401).
    """
    if len(body) > MAX_BODY_BYTES:
        raise WeChatRequestError("body too large", 413)
    if not config.safe:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise WeChatRequestError("the body is not UTF-8", 400) from None
    if query.get("encrypt_type") != "aes" or not query.get("msg_signature"):
        # A plain message sent to a safe-mode channel: WeChat only does that when the
        # account's mode differs from ours, or someone else is calling.
        raise WeChatRequestError("not an encrypted message: 'encrypt_type=aes' and "
                                 "'msg_signature' are required in safe mode")
    envelope = _envelope(body)
    crypto = WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)
    try:
        return crypto.decrypt_message(envelope, query["msg_signature"], query["timestamp"],
                                      query["nonce"])
    except InvalidSignatureException:
        raise WeChatRequestError("wrong 'msg_signature'") from None
    except InvalidAppIdException:
        # Also what another EncodingAESKey usually gives: the AppID read is noise.
        raise WeChatRequestError("the message is for another AppID, or encrypted with "
                                 "another EncodingAESKey") from None
    except (ValueError, TypeError, struct.error, IndexError):
        # Another EncodingAESKey: the plaintext is noise (bad padding, length or UTF-8).
        raise WeChatRequestError("cannot decrypt the message (wrong EncodingAESKey?)") from None


def _envelope(body: bytes) -> dict[str, str]:
    # Parsed here (with the SDK's parser, xmltodict) so that a malformed body is a 400
    # and not mixed up with a decryption failure; the SDK takes the parsed dict.
    try:
        parsed = xmltodict.parse(body)
    except (ExpatError, ValueError):
        raise WeChatRequestError("the body is not XML", 400) from None
    xml = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(xml, dict) or not isinstance(xml.get("Encrypt"), str) \
            or not xml["Encrypt"]:
        raise WeChatRequestError("the body has no 'Encrypt' element", 400)
    return {"Encrypt": xml["Encrypt"]}
