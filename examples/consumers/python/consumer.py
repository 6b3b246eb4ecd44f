"""A consumer of eventdata's change events: a quorum queue bound to the topic exchange, manual acks with a
prefetch window, deduplication by message id across restarts (SQLite), dead-lettering of what cannot be
processed, and validation of every payload against its versioned schema (schemas/changes/<type>/v1.json).

Run it (the relay must publish to the same exchange):

    python3 consumer.py --queue search-indexer --binding 'event.*' --state state.sqlite

What it records stands in for real work: every change it processes, once, in the `processed` table of the state
database, in the same transaction as the message id that makes a redelivery harmless.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

import aio_pika
import jsonschema

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "changes"
URN_PREFIX = "urn:eventdata:schema:changes:"


def schema_path(dataschema: str) -> Path:
    """`urn:eventdata:schema:changes:<type>:v<n>` -> schemas/changes/<type>/v<n>.json."""
    if not dataschema.startswith(URN_PREFIX):
        raise ValueError(f"unknown dataschema {dataschema!r}")
    change_type, version = dataschema[len(URN_PREFIX):].rsplit(":", 1)
    return SCHEMAS / change_type / f"{version}.json"


class Schemas:
    """Validators by dataschema, loaded on first use."""

    def __init__(self):
        self._validators = {}

    def validate(self, dataschema: str, payload):
        if dataschema not in self._validators:
            schema = json.loads(schema_path(dataschema).read_text())
            self._validators[dataschema] = jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.FormatChecker()
            )
        self._validators[dataschema].validate(payload)


class State:
    """Message ids already processed, and what processing did, in one SQLite file."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT PRIMARY KEY)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS processed (n INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT, "
            "change_type TEXT, resource_id TEXT, position INTEGER, etag TEXT)"
        )
        self.db.commit()

    def seen(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM seen WHERE message_id = ?", (message_id,)).fetchone() is not None

    def record(self, message_id: str, change_type: str, resource_id: str, position: int, etag):
        with self.db:
            self.db.execute("INSERT INTO seen (message_id) VALUES (?)", (message_id,))
            self.db.execute(
                "INSERT INTO processed (message_id, change_type, resource_id, position, etag) VALUES (?, ?, ?, ?, ?)",
                (message_id, change_type, resource_id, position, etag),
            )

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM seen").fetchone()[0]


async def declare(channel, exchange_name: str, queue_name: str, binding: str, delivery_limit: int):
    # The relay declares the exchange too (durable topic, no arguments unless an alternate exchange is configured).
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(f"{queue_name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(f"{queue_name}.dead", durable=True)
    await dead.bind(dlx)
    queue = await channel.declare_queue(
        queue_name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": f"{queue_name}.dlx",
            "x-delivery-limit": delivery_limit,
        },
    )
    await queue.bind(exchange, routing_key=binding)
    return queue


async def run(args) -> int:
    state = State(args.state)
    schemas = Schemas()
    connection = await aio_pika.connect_robust(args.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=args.prefetch)
        queue = await declare(channel, args.exchange, args.queue, args.binding, args.delivery_limit)
        print("ready", flush=True)
        handled = 0
        async with queue.iterator() as messages:
            async for message in messages:
                headers = message.headers or {}
                message_id = message.message_id
                if state.seen(message_id):
                    await message.ack()  # a redelivery of what is done: harmless
                else:
                    try:
                        payload = json.loads(message.body)
                        schemas.validate(str(headers.get("cloudEvents_dataschema", "")), payload)
                    except (ValueError, jsonschema.ValidationError) as err:
                        reason = getattr(err, "message", err)
                        print(f"dead-lettering {message_id}: {reason}", file=sys.stderr, flush=True)
                        await message.reject(requeue=False)
                        continue
                    resource = payload.get("resource") or payload.get("relation") or {}
                    try:
                        state.record(
                            message_id,
                            message.type,
                            str(headers.get("resource_id")),
                            int(headers.get("position")),
                            resource.get("etag"),
                        )
                    except Exception as err:  # transient: retried until the queue's delivery limit, then dead-lettered
                        print(f"retrying {message_id}: {err}", file=sys.stderr, flush=True)
                        await message.reject(requeue=True)
                        continue
                    handled += 1
                    if args.crash_after and handled >= args.crash_after:
                        # As a crash would: processed and recorded, never acknowledged.
                        os._exit(3)
                    await message.ack()
                if args.until and state.count() >= args.until:
                    return 0
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"))
    parser.add_argument("--exchange", default=os.environ.get("EVENTDATA_RELAY_EXCHANGE", "eventdata.changes"))
    parser.add_argument("--queue", default="python-consumer")
    parser.add_argument("--binding", default="#", help="routing key pattern, e.g. 'event.*'")
    parser.add_argument("--state", default="consumer-state.sqlite", help="SQLite file of processed message ids")
    parser.add_argument("--prefetch", type=int, default=50, help="unacknowledged messages in flight")
    parser.add_argument("--delivery-limit", type=int, default=5, help="redeliveries before dead-lettering")
    parser.add_argument("--until", type=int, default=0, help="exit once this many changes are processed")
    parser.add_argument("--crash-after", type=int, default=0, help="exit without acking after this many (tests)")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
