"""The agent console: people take over live conversations, and hand them back.

A small aiohttp app next to the two servers (``python -m console``, port 5006 by
default). Agents sign in (accounts in the shop database, scrypt hashes), see the
queue of open hand-over tickets, claim one, read the whole conversation with the
intent, confidence and sentiment of every message, answer the customer in the
customer's own channel, and hand the conversation back to the assistant or close
the ticket with a note. It also serves the analytics page and the review inbox.

It talks to Rasa only through Rasa's HTTP API (conversation events and triggered
intents, with Bearer tokens from ``cs_core.api_auth``), and reads Rasa's tracker
store only for analytics and the review inbox; it writes the shop database
(``actions.schema``, version 4). Neither server imports this package.

- ``console.settings``: one frozen settings object from the environment;
- ``console.passwords``: scrypt password hashes;
- ``console.store``: agents, sessions and tickets in the shop database;
- ``console.rasa_api``: the calls to Rasa's HTTP API;
- ``console.transcript``: a conversation's events as the agent reads them;
- ``console.analytics`` and ``console.review``: the analytics page and review inbox;
- ``console.app``: the web app (pages, JSON API, cookies, CSRF).
"""
