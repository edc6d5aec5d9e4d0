"""The topic table and the catalogue built from it agree."""

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.topics import ROUTING_PARTITIONS, TOPICS, TopicCatalogue, TopicSpec, home_partition


@pytest.mark.parametrize("tenant", ["acme", "globex", "initech", "umbrella", "a", "tenant-12345"])
def test_a_tenants_home_is_where_a_producer_puts_a_record_keyed_by_it(tenant: str) -> None:
    partitions = list(range(ROUTING_PARTITIONS))
    expected = DefaultPartitioner()(tenant.encode(), partitions, partitions)
    assert home_partition(tenant) == expected


def test_every_role_is_an_attribute_and_every_attribute_a_role() -> None:
    catalogue = TopicCatalogue("ns")
    roles = {entry.role for entry in TOPICS}
    attributes = {
        name
        for name in vars(TopicCatalogue)
        if isinstance(getattr(catalogue, name, None), TopicSpec | list)
    }
    assert roles == attributes
    single = [entry.role for entry in TOPICS if entry.role != "retry"]
    assert len(single) == len(set(single))


def test_attributes_and_all_list_the_same_unique_names() -> None:
    catalogue = TopicCatalogue("ns")
    by_attribute = [
        spec
        for role in dict.fromkeys(entry.role for entry in TOPICS)
        for spec in (
            getattr(catalogue, role)
            if isinstance(getattr(catalogue, role), list)
            else [getattr(catalogue, role)]
        )
    ]
    names = [spec.name for spec in catalogue.all()]
    assert by_attribute == catalogue.all()
    assert len(names) == len(set(names))
    assert all(name.startswith("ns") for name in names)
    assert len(catalogue.retry) > 1
