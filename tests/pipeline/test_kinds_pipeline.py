"""Chat transcripts and code: validation at ingest, scoring per kind."""

import pytest

from corpus.models import Item, Score
from tests.pipeline.test_scoring_pipeline import score

pytestmark = pytest.mark.django_db
URL = "/api/v1/datasets/demo/items/"


def chat(assistant: str, user: str = "Tell me about rivers.", system: str = "Be concise.") -> dict:
    return {
        "kind": "chat",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        ],
        "origin": "synthetic",
    }


LONG_ANSWER = (
    "Rivers carry sediment from the mountains toward the sea, and where the current slows the "
    "load settles into bars, islands and eventually broad deltas. Farmers have long followed "
    "the floods: the silt they leave is rich, although the same water that feeds a field one "
    "spring can wash away a village the next. Engineers straighten channels for barges, yet a "
    "straightened river runs faster, cuts deeper and sends its trouble downstream to a town "
    "that never asked for it."
)


OTHER_ANSWER = (
    "Glaciers grind the bedrock beneath them into flour so fine that meltwater turns milky "
    "blue. When a glacier retreats it leaves moraines, kettle lakes and erratic boulders "
    "stranded in fields, puzzles for the first geologists who mapped them."
)


def post(api, token, items):
    return api.as_token(token).post(URL, {"items": items}, format="json")


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        (
            {"kind": "chat", "messages": []},
            "messages",
            "List should have at least 1 item after validation, not 0",
        ),
        (
            {"kind": "chat", "messages": [{"role": "assistant", "content": "   "}]},
            "messages.0.content",
            "content is empty",
        ),
        (
            {"kind": "chat", "messages": [{"role": "wizard", "content": "hi"}]},
            "messages.0.role",
            "Input should be 'system', 'user', 'assistant' or 'tool'",
        ),
        (
            {"kind": "chat", "messages": [{"role": "user", "content": "hi"}]},
            "messages",
            "a transcript needs at least one assistant turn",
        ),
        ({"kind": "chat"}, "messages", "this field is required for a chat item"),
        (
            {"kind": "chat", "text": "x", "messages": [{"role": "assistant", "content": "a"}]},
            "text",
            "a chat item carries its text in messages, not text",
        ),
        (
            {"kind": "chat", "messages": [{"role": "assistant", "content": "a", "x": 1}]},
            "messages.0.x",
            "unknown field",
        ),
        (
            {"kind": "chat", "messages": [{"role": "assistant", "content": "a\x00b"}]},
            "messages.0.content",
            "content contains the control character U+0000 at position 1; only tab, newline "
            "and carriage return are allowed",
        ),
        (
            {"kind": "code", "text": "print(1)"},
            "language",
            "this field is required for a code item",
        ),
        (
            {"kind": "code", "text": "print(1)", "language": "klingon"},
            "language",
            "unknown language 'klingon'",
        ),
        ({"text": "hello", "language": "python"}, "language", "only code items have a language"),
        (
            {"text": "hello", "messages": [{"role": "assistant", "content": "a"}]},
            "messages",
            "only chat items have messages",
        ),
        ({"kind": "poem", "text": "hello"}, "kind", "Input should be 'text', 'chat' or 'code'"),
    ],
)
def test_each_kind_shape_is_validated(api, produce_token, item, field, message):
    response = post(api, produce_token, [{"text": "a fine item"}, item])
    assert response.status_code == 400
    assert {"index": 1, "field": field, "message": message} in response.json()["errors"]
    assert not Item.objects.exists()


def test_chat_item_is_stored_with_turns_and_transcript(api, produce_token):
    response = post(api, produce_token, [chat("Rivers flow to the sea.")])
    assert response.status_code == 201
    item = Item.objects.get()
    assert item.kind == "chat"
    assert item.messages[2] == {"role": "assistant", "content": "Rivers flow to the sea."}
    assert item.text.startswith("system: Be concise.")
    detail = api.get(f"/api/v1/items/{item.pk}/").json()
    assert detail["kind"] == "chat" and len(detail["messages"]) == 3


def test_code_item_language_is_canonical(api, produce_token):
    response = post(api, produce_token, [{"kind": "code", "text": "x = 1", "language": "Py"}])
    assert response.status_code == 201
    assert Item.objects.get().language == "python"


def test_whole_transcript_is_hashed_for_exact_duplicates(api, produce_token):
    post(api, produce_token, [chat("Same answer.", user="Question one?")])
    second = post(api, produce_token, [chat("Same answer.", user="Question two?")])
    assert second.json()["results"][0]["status"] == "created"  # different transcript
    third = post(api, produce_token, [chat("Same answer.", user="Question one?")])
    assert third.json()["results"][0]["status"] == "duplicate"


def test_chat_near_duplicates_look_at_assistant_turns(api, produce_token):
    # same prompts, different answers: not near-duplicates
    ids = [
        r["id"]
        for r in post(api, produce_token, [chat(LONG_ANSWER), chat(OTHER_ANSWER)]).json()["results"]
    ]
    # a different prompt with the same answer: a near-duplicate
    other = post(api, produce_token, [chat(LONG_ANSWER, user="Something else entirely?")])
    ids.append(other.json()["results"][0]["id"])
    score(ids)
    scores = {s.item_id: s for s in Score.objects.filter(item_id__in=ids)}
    assert scores[ids[1]].near_duplicate_of_id is None
    assert scores[ids[2]].near_duplicate_of_id == ids[0]
    assert scores[ids[2]].near_duplicate_jaccard == 1.0


def test_detector_says_chat_and_code_are_outside_its_training(api, produce_token):
    response = post(
        api,
        produce_token,
        [
            chat(LONG_ANSWER),
            {"kind": "code", "text": "def f():\n    return 1\n", "language": "python"},
        ],
    )
    ids = [r["id"] for r in response.json()["results"]]
    score(ids)
    for s in Score.objects.filter(item_id__in=ids):
        assert s.detector_probability is None
        assert s.detectors["learned"]["unsupported"] in ("chat", "code")
    states = dict(Item.objects.filter(id__in=ids).values_list("kind", "state_reason"))
    assert set(Item.objects.filter(id__in=ids).values_list("state", flat=True)) == {"queued"}, (
        states
    )


def test_code_repeated_blocks_are_auto_rejected(api, produce_token):
    block = "for row in rows:\n    total += compute_value(row)\n    print('value', total)\n"
    response = post(api, produce_token, [{"kind": "code", "text": block * 6, "language": "python"}])
    item_id = response.json()["results"][0]["id"]
    score([item_id])
    item = Item.objects.get(pk=item_id)
    assert item.state == Item.State.AUTO_REJECTED
    assert item.state_reason.startswith("degenerate:")


def test_code_near_duplicates_ignore_comments_and_layout(api, produce_token):
    body = "\n".join(f"    total_{i} = compute(values[{i}], factor={i})" for i in range(30))
    a = "def run(values):\n" + body + "\n    return total_0\n"
    b = "# copied\ndef run(values):\n" + body.replace("    ", "\t") + "\n    return total_0  # ok\n"
    response = post(
        api,
        produce_token,
        [
            {"kind": "code", "text": a, "language": "python"},
            {"kind": "code", "text": b, "language": "python"},
        ],
    )
    ids = [r["id"] for r in response.json()["results"]]
    score(ids)
    assert Score.objects.get(item_id=ids[1]).near_duplicate_of_id == ids[0]
