"""TopicDirectory on the real broker: lists without creating, re-lists for a missed name."""

import pytest

from streams.kafka.admin import ensure_topics
from streams.kafka.topic_directory import TopicDirectory
from streams.local.broker import EmbeddedBroker
from streams.topics import TopicCatalogue


@pytest.mark.asyncio
async def test_a_missed_name_is_listed_again_once_and_never_created(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    directory = TopicDirectory(broker.bootstrap)
    await directory.refresh()
    replies = catalogue.replies
    assert not directory.exists(replies.name)

    await ensure_topics(broker.bootstrap, [replies])  # created after the last listing
    await directory.recheck(replies.name)
    assert directory.exists(replies.name)

    missing = f"{namespace}.replies.nobody"
    await directory.recheck(missing)
    await directory.refresh()
    assert not directory.exists(missing)  # asking never created it


@pytest.mark.asyncio
async def test_reply_topics_treat_every_catalogue_topic_but_replies_as_internal(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    rule = TopicDirectory(broker.bootstrap).reply_topics(catalogue)
    assert catalogue.replies.name not in rule.internal
    assert {t.name for t in catalogue.all()} - {catalogue.replies.name} == set(rule.internal)
