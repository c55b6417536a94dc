import factory
from django.contrib.auth import get_user_model

from corpus.models import Dataset, Item, Source
from corpus.scoring.text import content_hash


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"ds{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("dataset", "name")

    dataset = factory.SubFactory(DatasetFactory)
    name = "pipeline"


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    dataset = factory.SubFactory(DatasetFactory)
    source = factory.LazyAttribute(lambda o: SourceFactory(dataset=o.dataset))
    text = factory.Sequence(lambda n: f"Generated answer number {n} about a varied topic.")
    content_hash = factory.LazyAttribute(lambda o: content_hash(o.text))
    origin = Item.Origin.SYNTHETIC
    state = Item.State.QUEUED
