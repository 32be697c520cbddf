/*
 * Shopwise web chat: talks to the assistant through Rasa's socket.io protocol
 * (session_request/session_confirm, user_uttered/bot_uttered); see bot/webchat.py.
 *
 * The server issues a signed session id; it is kept in localStorage and sent again
 * with every session_request, so a reload (or a reconnect after a server restart)
 * continues the conversation; the visible transcript is kept in localStorage too and
 * shown again on load. An id the server does not accept is replaced by a new one.
 *
 * A logged-in customer: the embedding page hands the page a customer token (a JWT
 * its backend signed, see bot/identity.py and docs/channels.md), which goes to the
 * server in session_request's customer_token and is kept in memory only:
 *   - window.SHOPWISE_CUSTOMER_TOKEN, or data-customer-token on this script's tag,
 *     when the shop's own page loads this script;
 *   - postMessage({type: "shopwise:customer-token", token: "..." | null}) from the
 *     parent window when the page is framed by one of the origins the server allows
 *     (data-embed-origins); the page says {type: "shopwise:webchat-ready"} to those
 *     origins first and waits up to TOKEN_WAIT_MS for the answer (null: anonymous);
 *   - window.shopwiseWebchat.setCustomerToken(token).
 * Never in a URL. The server answers a token it cannot verify with session_refused:
 * the page then shows why, stays disconnected until a new token arrives, and asks
 * the parent for one with {type: "shopwise:customer-token-needed", reason}.
 */
(function () {
  "use strict";

  var SESSION_KEY = "shopwise-webchat:session";
  var TRANSCRIPT_KEY = "shopwise-webchat:transcript";
  var MAX_ENTRIES = 200;
  var TYPING_TIMEOUT_MS = 120000;
  var TOKEN_WAIT_MS = 3000;
  // The page's own words, in the language the browser asks for first (English or
  // Simplified Chinese); the assistant's answers follow the customer's messages.
  var STRINGS = {
    en: {
      token_required: "Please sign in to the shop to chat with us.",
      token_expired: "Your sign-in has expired. Reload the page to chat again.",
      token_invalid: "The chat could not confirm who you are. Reload the page to try again.",
      identity_unavailable: "The chat cannot confirm who you are right now.",
      refused: "The chat refused this session. Reload the page to try again.",
      suggested: "Suggested replies",
      image: "Image from the assistant",
      connecting: "Connecting…",
      connected: "Connected",
      starting: "Connected, starting the session…",
      lost: "Connection lost, reconnecting…",
      unreachable: "Cannot reach the assistant, retrying…",
      attempt: "Reconnecting… (attempt {n})",
      typing: "The assistant is typing…",
      message: "Your message",
      placeholder: "Type your message and press Enter",
      send: "Send",
      conversation: "Conversation"
    },
    zh: {
      token_required: "请先登录商城再与我们聊天。",
      token_expired: "您的登录已过期，请刷新页面后再聊天。",
      token_invalid: "无法确认您的身份，请刷新页面重试。",
      identity_unavailable: "暂时无法确认您的身份。",
      refused: "聊天会话被拒绝，请刷新页面重试。",
      suggested: "推荐回复",
      image: "助手发送的图片",
      connecting: "正在连接…",
      connected: "已连接",
      starting: "已连接，正在开始会话…",
      lost: "连接已断开，正在重新连接…",
      unreachable: "暂时无法连接到助手，正在重试…",
      attempt: "正在重新连接…（第 {n} 次）",
      typing: "助手正在输入…",
      message: "您的消息",
      placeholder: "输入消息，按回车发送",
      send: "发送",
      conversation: "对话"
    }
  };
  var LANGUAGE = ((navigator.languages && navigator.languages[0]) || navigator.language || "en")
    .toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  function t(key, values) {
    var text = STRINGS[LANGUAGE][key] || STRINGS.en[key];
    Object.keys(values || {}).forEach(function (name) {
      text = text.replace("{" + name + "}", values[name]);
    });
    return text;
  }
  var REFUSALS = {token_required: t("token_required"), token_expired: t("token_expired"),
                  token_invalid: t("token_invalid"),
                  identity_unavailable: t("identity_unavailable")};
  var DEFAULT_REFUSAL = t("refused");

  // The static page in the browser's language (index.html is the English original).
  function translatePage() {
    if (LANGUAGE === "en") { return; }
    document.documentElement.lang = "zh-CN";
    var set = function (selector, key, attribute) {
      var node = document.querySelector(selector);
      if (!node) { return; }
      if (attribute) { node.setAttribute(attribute, t(key)); } else { node.textContent = t(key); }
    };
    set("#status", "connecting");
    set(".typing__label", "typing");
    set("label[for=message]", "message");
    set("#message", "placeholder", "placeholder");
    set("#send", "send");
    set("#messages", "conversation", "aria-label");
  }
  translatePage();

  // The origins whose pages may frame the chat and hand it a token (from the server).
  var embedOrigins = (document.documentElement.dataset.embedOrigins || "")
    .split(/\s+/).filter(Boolean);
  var embedded = window.parent !== window;

  function initialToken() {
    var script = document.currentScript; // only set while this script first runs
    var candidates = [window.SHOPWISE_CUSTOMER_TOKEN,
      script ? script.getAttribute("data-customer-token") : null];
    for (var i = 0; i < candidates.length; i += 1) {
      if (typeof candidates[i] === "string" && candidates[i]) {
        return candidates[i];
      }
    }
    return null;
  }

  var elements = {
    status: document.getElementById("status"),
    messages: document.getElementById("messages"),
    typing: document.getElementById("typing"),
    composer: document.getElementById("composer"),
    input: document.getElementById("message")
  };

  function readStorage(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (error) {
      return null; // storage disabled: the chat still works, without persistence
    }
  }

  function writeStorage(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, value);
      }
    } catch (error) {
      /* full or disabled: keep going */
    }
  }

  function loadTranscript(sessionId) {
    var stored;
    try {
      stored = JSON.parse(readStorage(TRANSCRIPT_KEY) || "null");
    } catch (error) {
      stored = null;
    }
    if (!stored || stored.sessionId !== sessionId || !Array.isArray(stored.entries)) {
      return [];
    }
    return stored.entries;
  }

  var state = {
    sessionId: readStorage(SESSION_KEY),
    ready: false, // connected and the session confirmed
    outbox: [], // user entries typed while not ready, sent after session_confirm
    entries: [],
    typingTimer: null,
    customerToken: initialToken(), // in memory only, never stored
    refused: null, // the reason of the server's session_refused, until a new token
    awaitingToken: false, // framed by an embedding page that may still send a token
    tokenTimer: null
  };
  state.awaitingToken = embedded && embedOrigins.length > 0 && !state.customerToken;
  state.entries = state.sessionId ? loadTranscript(state.sessionId) : [];

  function setStatus(kind, text) {
    elements.status.dataset.state = kind;
    elements.status.textContent = text;
  }

  function scrollToEnd() {
    elements.messages.scrollTop = elements.messages.scrollHeight;
  }

  function showTyping() {
    elements.typing.hidden = false;
    window.clearTimeout(state.typingTimer);
    state.typingTimer = window.setTimeout(hideTyping, TYPING_TIMEOUT_MS);
    scrollToEnd();
  }

  function hideTyping() {
    window.clearTimeout(state.typingTimer);
    elements.typing.hidden = true;
  }

  /* ---- rendering ------------------------------------------------------ */

  function renderButtons(entry, item) {
    var group = document.createElement("div");
    group.className = "buttons";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", t("suggested"));
    entry.buttons.forEach(function (button, position) {
      var element = document.createElement("button");
      element.type = "button";
      element.textContent = button.title;
      element.disabled = Boolean(entry.done);
      if (entry.chosen === position) {
        element.setAttribute("aria-pressed", "true");
      }
      element.addEventListener("click", function () {
        choose(entry, position);
      });
      group.appendChild(element);
    });
    item.appendChild(group);
    entry.element = group;
  }

  function render(entry) {
    var item = document.createElement("li");
    item.className = "message message--" + entry.from;
    if (entry.pending) {
      item.classList.add("message--pending");
    }
    if (entry.text) {
      var text = document.createElement("p");
      text.className = "message__text";
      text.textContent = entry.text;
      item.appendChild(text);
    }
    if (entry.image) {
      var image = document.createElement("img");
      image.className = "message__image";
      image.src = entry.image;
      image.alt = entry.text || t("image");
      item.appendChild(image);
    }
    if (entry.buttons && entry.buttons.length) {
      renderButtons(entry, item);
    }
    entry.item = item;
    elements.messages.appendChild(item);
    scrollToEnd();
  }

  function stored(entry) {
    // The entry as saved: without its DOM nodes.
    var copy = {};
    Object.keys(entry).forEach(function (key) {
      if (key !== "element" && key !== "item") {
        copy[key] = entry[key];
      }
    });
    return copy;
  }

  function add(entry) {
    state.entries.push(entry);
    render(entry);
    persist();
  }

  function persist() {
    if (state.entries.length > MAX_ENTRIES) {
      state.entries = state.entries.slice(-MAX_ENTRIES);
    }
    writeStorage(TRANSCRIPT_KEY, JSON.stringify({
      sessionId: state.sessionId,
      entries: state.entries.map(stored)
    }));
  }

  /* ---- sending -------------------------------------------------------- */

  function closeButtons(except, chosen) {
    // Any message the user sends answers (and so retires) all open buttons.
    state.entries.forEach(function (entry) {
      if (!entry.buttons || entry.done) {
        return;
      }
      entry.done = true;
      if (entry === except) {
        entry.chosen = chosen;
      }
      if (entry.element) {
        Array.prototype.forEach.call(entry.element.querySelectorAll("button"),
          function (element, position) {
            element.disabled = true;
            if (entry === except && position === chosen) {
              element.setAttribute("aria-pressed", "true");
            }
          });
      }
    });
  }

  function emit(payload) {
    socket.emit("user_uttered", { message: payload, session_id: state.sessionId });
  }

  function send(shown, payload, buttonsEntry, chosen) {
    closeButtons(buttonsEntry, chosen);
    var entry = { from: "user", text: shown };
    if (state.ready) {
      emit(payload);
    } else {
      entry.pending = true;
      entry.payload = payload; // kept so that a reload still sends it
      state.outbox.push(entry);
    }
    add(entry);
    showTyping();
  }

  function choose(entry, position) {
    if (entry.done) {
      return;
    }
    var button = entry.buttons[position];
    send(button.title, button.payload, entry, position);
  }

  elements.composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = elements.input.value.trim();
    if (!text) {
      return;
    }
    elements.input.value = "";
    send(text, text);
    elements.input.focus();
  });

  /* ---- receiving ------------------------------------------------------ */

  function buttonsOf(message) {
    var raw = message.quick_replies || message.buttons || [];
    if (!Array.isArray(raw)) {
      return [];
    }
    return raw.filter(function (button) {
      return button && typeof button.title === "string";
    }).map(function (button) {
      var payload = typeof button.payload === "string" ? button.payload : button.title;
      return { title: button.title, payload: payload };
    });
  }

  function imageOf(message) {
    var attachment = message.attachment;
    if (attachment && attachment.type === "image" && attachment.payload &&
        typeof attachment.payload.src === "string") {
      return attachment.payload.src;
    }
    return typeof message.image === "string" ? message.image : null;
  }

  function onBotMessage(message) {
    if (!message || typeof message !== "object") {
      return;
    }
    var entry = { from: "bot" };
    if (typeof message.text === "string" && message.text) {
      entry.text = message.text;
    }
    var image = imageOf(message);
    if (image) {
      entry.image = image;
    }
    var buttons = buttonsOf(message);
    if (buttons.length) {
      entry.buttons = buttons;
    }
    if (!entry.text && !entry.image && !entry.buttons) {
      return; // custom payloads this page cannot show
    }
    hideTyping();
    add(entry);
  }

  function tellEmbedder(message) {
    // Only the allowed origins: the browser drops the message for any other parent.
    if (!embedded) {
      return;
    }
    embedOrigins.forEach(function (origin) {
      try {
        window.parent.postMessage(message, origin);
      } catch (error) {
        /* a detached parent */
      }
    });
  }

  function onSessionRefused(refusal) {
    var reason = refusal && typeof refusal.reason === "string" ? refusal.reason : "";
    state.refused = reason || "refused";
    state.ready = false;
    hideTyping();
    setStatus("refused", REFUSALS[reason] || DEFAULT_REFUSAL);
    tellEmbedder({ type: "shopwise:customer-token-needed", reason: reason });
  }

  function onSessionConfirm(confirmed) {
    var sessionId = confirmed && typeof confirmed === "object" ? confirmed.session_id : confirmed;
    if (typeof sessionId !== "string" || !sessionId) {
      return;
    }
    if (state.sessionId && state.sessionId !== sessionId) {
      // The server started another conversation: the old transcript is not its own.
      state.entries = [];
      elements.messages.textContent = "";
    }
    state.sessionId = sessionId;
    writeStorage(SESSION_KEY, sessionId);
    persist();
    state.ready = true;
    setStatus("connected", t("connected"));
    var outbox = state.outbox;
    state.outbox = [];
    outbox.forEach(function (entry) {
      emit(entry.payload);
      delete entry.pending;
      delete entry.payload;
      if (entry.item) {
        entry.item.classList.remove("message--pending");
      }
    });
    persist();
  }

  /* ---- connection ----------------------------------------------------- */

  state.entries.forEach(function (entry) {
    render(entry);
    if (entry.pending) {
      state.outbox.push(entry); // typed before a reload, never sent
    }
  });

  var socket = window.io({
    path: document.documentElement.dataset.socketioPath || "/socket.io",
    reconnection: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000
  });

  function requestSession() {
    if (state.awaitingToken || state.refused || !socket.connected) {
      return;
    }
    var request = { session_id: state.sessionId };
    if (state.customerToken) {
      request.customer_token = state.customerToken;
    }
    socket.emit("session_request", request);
  }

  function setCustomerToken(token) {
    state.customerToken = typeof token === "string" && token ? token : null;
    state.awaitingToken = false;
    window.clearTimeout(state.tokenTimer);
    state.refused = null;
    state.ready = false;
    if (socket.connected) {
      requestSession(); // the server continues the session only for the same customer
    } else if (!socket.active) {
      socket.connect(); // after a refusal; a connecting socket requests on "connect"
    }
  }

  window.addEventListener("message", function (event) {
    if (!embedded || event.source !== window.parent ||
        embedOrigins.indexOf(event.origin) < 0) {
      return;
    }
    var data = event.data;
    if (data && typeof data === "object" && data.type === "shopwise:customer-token") {
      setCustomerToken(data.token);
    }
  });

  if (state.awaitingToken) {
    state.tokenTimer = window.setTimeout(function () {
      state.awaitingToken = false; // no answer: an anonymous chat
      requestSession();
    }, TOKEN_WAIT_MS);
    tellEmbedder({ type: "shopwise:webchat-ready" });
  }

  socket.on("connect", function () {
    setStatus("connecting", t("starting"));
    requestSession();
  });
  socket.on("session_confirm", onSessionConfirm);
  socket.on("session_refused", onSessionRefused);
  socket.on("bot_uttered", onBotMessage);
  socket.on("disconnect", function (reason) {
    state.ready = false;
    if (state.refused) {
      return; // the refusal stays on screen; a new token connects again
    }
    setStatus("reconnecting", t("lost"));
    if (reason === "io server disconnect") {
      socket.connect(); // the server closed the socket: socket.io does not retry that
    }
  });
  socket.on("connect_error", function () {
    setStatus("disconnected", t("unreachable"));
  });
  socket.io.on("reconnect_attempt", function (attempt) {
    setStatus("reconnecting", t("attempt", {n: attempt}));
  });

  // For the browser tests and for debugging in the console.
  window.shopwiseWebchat = { socket: socket, state: state, setCustomerToken: setCustomerToken };
})();
