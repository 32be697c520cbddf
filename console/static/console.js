// The agent console's pages: the queue, a conversation, the review inbox.
// Text from customers is only ever set with textContent; the sparkline SVG comes
// from the server and holds numbers only (console/transcript.py).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, url, body) {
  const options = {method, credentials: "same-origin", headers: {}};
  if (method !== "GET") {
    options.headers["X-CSRF-Token"] = csrf();
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(url, options);
  if (response.status === 401) { window.location = "/login"; return null; }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(data.error || `HTTP ${response.status}`); }
  return data;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) { node.className = className; }
  if (text !== undefined && text !== null) { node.textContent = text; }
  return node;
}

function waited(seconds) {
  if (seconds < 60) { return `${Math.round(seconds)} s`; }
  if (seconds < 3600) { return `${Math.round(seconds / 60)} min`; }
  return `${(seconds / 3600).toFixed(1)} h`;
}

// -- the queue ----------------------------------------------------------------------
async function refreshQueue() {
  const form = document.getElementById("filters");
  const query = new URLSearchParams(new FormData(form)).toString();
  const data = await api("GET", `/api/queue?${query}`);
  if (!data) { return; }
  const rows = document.getElementById("queue-rows");
  rows.replaceChildren();
  if (data.tickets.length === 0) {
    const row = element("tr"); const cell = element("td", "", "No open tickets.");
    cell.colSpan = 8; row.append(cell); rows.append(row); return;
  }
  for (const ticket of data.tickets) {
    const row = element("tr", "ticket-row");
    row.dataset.reference = ticket.reference;
    row.append(element("td", `priority ${ticket.priority}`, ticket.priority));
    const link = element("a", "", ticket.reference);
    link.href = `/tickets/${ticket.reference}`;
    const refCell = element("td"); refCell.append(link); row.append(refCell);
    row.append(element("td", "reason", ticket.reason.replaceAll("_", " ")));
    row.append(element("td", "channel", ticket.channel));
    row.append(element("td", "", ticket.intent || "—"));
    row.append(element("td", "waiting", waited(ticket.waiting_s)));
    const spark = element("td", "spark"); spark.innerHTML = ticket.sparkline; row.append(spark);
    const action = element("td");
    if (ticket.mine) {
      const open = element("a", "button", "Open"); open.href = link.href; action.append(open);
    } else if (ticket.assigned_agent) {
      action.append(element("span", "held", `with ${ticket.assigned_name || "a colleague"}`));
    } else {
      const button = element("button", "claim", "Claim");
      button.addEventListener("click", async () => {
        try {
          await api("POST", `/api/tickets/${ticket.reference}/claim`);
          window.location = link.href;
        } catch (error) { button.textContent = error.message; button.disabled = true; }
      });
      action.append(button);
    }
    row.append(action);
    rows.append(row);
  }
}

function startQueue() {
  document.getElementById("filters").addEventListener("change", refreshQueue);
  refreshQueue();
  setInterval(refreshQueue, 2000);
}

// -- a conversation -----------------------------------------------------------------
function describe(line) {
  const item = element("li", `line ${line.kind}`);
  const who = {customer: "Customer", assistant: "Assistant", event: "Event",
               agent: line.agent || "Agent"}[line.kind];
  item.append(element("span", "who", who));
  item.append(element("span", "text", line.text));
  if (line.kind === "customer") {
    const facts = element("span", "facts");
    const confidence = line.confidence === null ? "?" : line.confidence.toFixed(2);
    facts.append(element("span", "intent", `${line.intent || "?"} ${confidence}`));
    if (line.sentiment) {
      const negative = line.negative === null ? "" : ` (neg ${line.negative.toFixed(2)})`;
      facts.append(element("span", `sentiment ${line.sentiment}`, `${line.sentiment}${negative}`));
    }
    if (!line.message_key) { item.append(facts); return item; }  // a button click
    const fix = element("input", "correct");
    fix.setAttribute("list", "intents"); fix.setAttribute("aria-label", "correct intent");
    fix.placeholder = "correct intent";
    fix.addEventListener("change", async () => {
      try {
        await api("POST", "/api/review", {message_key: line.message_key, sender_id: senderId,
          text: line.text, predicted_intent: line.predicted_intent,
          confidence: line.predicted_confidence, intent: fix.value});
        fix.classList.add("saved");
      } catch (error) { fix.value = ""; fix.placeholder = error.message; }
    });
    facts.append(fix);
    item.append(facts);
  }
  return item;
}

let senderId = "";
let shown = "";

async function refreshTicket(reference) {
  const data = await api("GET", `/api/tickets/${reference}`);
  if (!data) { return; }
  senderId = data.ticket.sender_id;
  document.getElementById("status").textContent = data.ticket.status;
  document.getElementById("holder").textContent = data.ticket.assigned_name
    ? `· held by ${data.ticket.assigned_name}` : "· not claimed";
  document.getElementById("sparkline").innerHTML = data.ticket.sparkline;
  const mine = data.ticket.mine && data.ticket.status === "open";
  for (const form of document.querySelectorAll("#reply, #close")) {
    for (const control of form.elements) { control.disabled = !mine; }
  }
  const notice = document.getElementById("notice");
  notice.textContent = data.rasa_error ? `Conversation not available: ${data.rasa_error}`
    : (data.waiting.length ? `${data.waiting.length} reply(ies) wait for the customer's next message (REST has no push).` : "");
  const signature = JSON.stringify([data.lines.length, data.waiting]);
  if (signature === shown) { return; }
  shown = signature;
  const list = document.getElementById("transcript");
  list.replaceChildren(...data.lines.map(describe));
  for (const text of data.waiting) {
    list.append(describe({kind: "agent", agent: "You (not delivered yet)", text}));
  }
  list.lastElementChild?.scrollIntoView({block: "end"});
}

function startTicket() {
  const reference = document.getElementById("ticket").dataset.reference;
  const notice = document.getElementById("notice");
  document.getElementById("reply").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = document.getElementById("reply-text");
    try {
      await api("POST", `/api/tickets/${reference}/reply`, {text: box.value});
      box.value = "";
      refreshTicket(reference);
    } catch (error) { notice.textContent = error.message; }
  });
  document.getElementById("handback").addEventListener("click", async () => {
    try {
      await api("POST", `/api/tickets/${reference}/handback`);
      notice.textContent = "Handed back to the assistant; the ticket is closed.";
      refreshTicket(reference);
    } catch (error) { notice.textContent = error.message; }
  });
  document.getElementById("close").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/tickets/${reference}/close`,
                {resolution: document.getElementById("resolution").value});
      notice.textContent = "Ticket closed.";
      refreshTicket(reference);
    } catch (error) { notice.textContent = error.message; }
  });
  refreshTicket(reference);
  setInterval(() => refreshTicket(reference), 1000);
}

// -- the review inbox -------------------------------------------------------------
function startReview() {
  for (const row of document.querySelectorAll(".review-item")) {
    row.querySelector(".save").addEventListener("click", async () => {
      const verdict = row.querySelector(".verdict");
      const confidence = row.dataset.confidence === "" ? null : Number(row.dataset.confidence);
      try {
        const data = await api("POST", "/api/review", {message_key: row.dataset.key,
          sender_id: row.dataset.sender, text: row.dataset.text,
          predicted_intent: row.dataset.predicted || null, confidence,
          intent: row.querySelector(".intent").value});
        verdict.textContent = data.verdict;
      } catch (error) { verdict.textContent = error.message; }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "queue") { startQueue(); }
  if (page === "ticket") { startTicket(); }
  if (page === "review") { startReview(); }
});
