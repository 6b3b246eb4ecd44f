"""The LLM-extraction loop: for every `event.created` change, read the event's context as text (GetEventContext),
have a model extract its speakers, companies and topics (BAML function `ExtractEntities`, baml_src/), turn the
answer into typed entities with BAML's parser, and write them back through the ingest upserts and the relation
methods.

No model is reachable where the tests run: with `--fixtures DIR`, the answer for an event is the recorded one in
`DIR/<event slug>.txt` and only BAML's parser runs (`b.parse.ExtractEntities`); without it, the BAML client calls
the model configured in baml_src/extraction.baml (OPENAI_API_KEY).

Replays are harmless: upserts find a speaker, company or topic by its natural key and change nothing when the
values are already there, and a relation that exists already is ALREADY_EXISTS (RELATION_EXISTS), which the loop
counts as done. So a redelivered message writes nothing and emits no change.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GENERATED = HERE / "generated"


def generate():
    """BAML's client from baml_src/ and the gRPC stubs from proto/ (grpcio-tools: no system protoc), when missing
    or older than their sources."""
    baml_client = HERE / "baml_client" / "__init__.py"
    baml_sources = list((HERE / "baml_src").glob("*.baml"))
    if not baml_client.exists() or baml_client.stat().st_mtime < max(p.stat().st_mtime for p in baml_sources):
        cli = shutil.which("baml-cli") or "baml-cli"
        subprocess.run([cli, "generate", "--from", str(HERE / "baml_src")], check=True, capture_output=True)
    protos = sorted((ROOT / "proto" / "eventdata" / "v1").glob("*.proto"))
    marker = GENERATED / "eventdata" / "v1" / "events_pb2_grpc.py"
    if not marker.exists() or marker.stat().st_mtime < max(p.stat().st_mtime for p in protos):
        import grpc_tools
        from grpc_tools import protoc

        GENERATED.mkdir(exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{well_known}", f"--python_out={GENERATED}",
                f"--grpc_python_out={GENERATED}"] + [str(p) for p in protos]
        if protoc.main(args) != 0:
            raise SystemExit("generating the gRPC stubs failed")


generate()
sys.path.insert(0, str(GENERATED))
sys.path.insert(0, str(HERE))

import aio_pika  # noqa: E402
import grpc  # noqa: E402
from baml_client import b  # noqa: E402
from baml_client import types as baml  # noqa: E402
from eventdata.v1 import companies_pb2, companies_pb2_grpc  # noqa: E402
from eventdata.v1 import events_pb2, events_pb2_grpc  # noqa: E402
from eventdata.v1 import resources_pb2  # noqa: E402
from eventdata.v1 import speakers_pb2, speakers_pb2_grpc  # noqa: E402
from eventdata.v1 import topics_pb2, topics_pb2_grpc  # noqa: E402

ROLES = {
    baml.SpeakerRole.KEYNOTE: resources_pb2.SPEAKER_ROLE_KEYNOTE,
    baml.SpeakerRole.SPEAKER: resources_pb2.SPEAKER_ROLE_SPEAKER,
    baml.SpeakerRole.PANELIST: resources_pb2.SPEAKER_ROLE_PANELIST,
    baml.SpeakerRole.MODERATOR: resources_pb2.SPEAKER_ROLE_MODERATOR,
}
RELATIONS = {
    baml.CompanyRelation.HOST: resources_pb2.COMPANY_RELATION_HOST,
    baml.CompanyRelation.SPONSOR: resources_pb2.COMPANY_RELATION_SPONSOR,
    baml.CompanyRelation.EXHIBITOR: resources_pb2.COMPANY_RELATION_EXHIBITOR,
    baml.CompanyRelation.PARTNER: resources_pb2.COMPANY_RELATION_PARTNER,
}


class Catalogue:
    """The eventdata calls the loop makes, with the API key on every one."""

    def __init__(self, target: str, api_key: str):
        channel = grpc.insecure_channel(target)
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.events = events_pb2_grpc.EventServiceStub(channel)
        self.speakers = speakers_pb2_grpc.SpeakerServiceStub(channel)
        self.companies = companies_pb2_grpc.CompanyServiceStub(channel)
        self.topics = topics_pb2_grpc.TopicServiceStub(channel)

    def context_text(self, event_id: str) -> str:
        request = events_pb2.GetEventContextRequest(id=event_id, format=events_pb2.CONTEXT_FORMAT_TEXT)
        return self.events.GetEventContext(request, metadata=self.metadata, timeout=10).text

    def relate(self, call, request):
        """Adds a relation; one that exists already is what a replay finds, and counts as done."""
        try:
            call(request, metadata=self.metadata, timeout=10)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise

    def write(self, event_id: str, found: baml.Extraction):
        companies = {}
        for company in found.companies:
            fields = {"name": company.name}
            if company.domain:
                fields["domain"] = company.domain
            upserted = self.companies.UpsertCompany(
                companies_pb2.UpsertCompanyRequest(company=resources_pb2.Company(**fields)),
                metadata=self.metadata, timeout=10,
            ).company
            companies[company.name] = upserted.id
            relation = resources_pb2.EventCompany(event_id=event_id, company_id=upserted.id,
                                                  relation=RELATIONS[company.relation])
            self.relate(self.events.AddEventCompany, events_pb2.AddEventCompanyRequest(event_company=relation))
        for name in found.topics:
            topic = self.topics.UpsertTopic(
                topics_pb2.UpsertTopicRequest(topic=resources_pb2.Topic(name=name)), metadata=self.metadata, timeout=10
            ).topic
            relation = resources_pb2.EventTopic(event_id=event_id, topic_id=topic.id)
            self.relate(self.events.AddEventTopic, events_pb2.AddEventTopicRequest(event_topic=relation))
        for speaker in found.speakers:
            fields = {"name": speaker.name}
            if speaker.title:
                fields["title"] = speaker.title
            if speaker.company and speaker.company in companies:
                fields["company_id"] = companies[speaker.company]
            upserted = self.speakers.UpsertSpeaker(
                speakers_pb2.UpsertSpeakerRequest(speaker=resources_pb2.Speaker(**fields)),
                metadata=self.metadata, timeout=10,
            ).speaker
            relation = resources_pb2.EventSpeaker(event_id=event_id, speaker_id=upserted.id, role=ROLES[speaker.role])
            self.relate(self.events.AddEventSpeaker, events_pb2.AddEventSpeakerRequest(event_speaker=relation))


def extract(context: baml.EventContext, slug: str, fixtures) -> baml.Extraction:
    if fixtures is not None:
        return b.parse.ExtractEntities((Path(fixtures) / f"{slug}.txt").read_text())
    return b.ExtractEntities(context)


async def run(args) -> int:
    catalogue = Catalogue(args.grpc, args.api_key)
    connection = await aio_pika.connect_robust(args.amqp_url)
    handled = 0
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)  # one event at a time: the model call is the slow part
        exchange = await channel.declare_exchange(args.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        dlx = await channel.declare_exchange(f"{args.queue}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
        dead = await channel.declare_queue(f"{args.queue}.dead", durable=True)
        await dead.bind(dlx)
        queue = await channel.declare_queue(
            args.queue, durable=True,
            arguments={"x-queue-type": "quorum", "x-dead-letter-exchange": f"{args.queue}.dlx", "x-delivery-limit": 5},
        )
        await queue.bind(exchange, routing_key="event.created")
        print("ready", flush=True)
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process(requeue=True):  # ack when written, retry on failure
                    change = json.loads(message.body)
                    event_id = change["resource_id"]
                    text = await asyncio.to_thread(catalogue.context_text, event_id)
                    context = baml.EventContext(event_id=event_id, text=text)
                    found = await asyncio.to_thread(extract, context, change["resource"]["slug"], args.fixtures)
                    await asyncio.to_thread(catalogue.write, event_id, found)
                    print(f"extracted {event_id}: {len(found.speakers)} speakers, {len(found.companies)} companies, "
                          f"{len(found.topics)} topics", file=sys.stderr, flush=True)
                handled += 1
                if args.until and handled >= args.until:
                    return 0
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grpc", default=os.environ.get("EVENTDATA_GRPC_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--api-key", default=os.environ.get("EVENTDATA_API_KEY", ""))
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"))
    parser.add_argument("--exchange", default=os.environ.get("EVENTDATA_RELAY_EXCHANGE", "eventdata.changes"))
    parser.add_argument("--queue", default="llm-extraction")
    parser.add_argument("--fixtures", help="directory of recorded model answers, <event slug>.txt")
    parser.add_argument("--until", type=int, default=0, help="exit after this many events (tests)")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
