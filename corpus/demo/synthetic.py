"""Generated-looking items of the demo dataset, written for Synthgate.

Each batch plays one producer. Together they exercise what the gate is for: clean varied
outputs, near-copies of the human reference paragraphs, looping and padded generations, an exact
duplicate across two generators, items of undeclared origin, and rewrites of rewrites
(generation depth 2 and 3). ``metadata["demo_case"]`` names the case so a reader of the demo can
tell what each item was written to show.

A parent written as ``"@<source>/<external_id>"`` points at an item of another source; the seeder
resolves it to that item's id. A bare string is an external id within the item's own source, as
the ingest API defines it.
"""

from typing import Any

from corpus.demo.kinds import CHAT_ITEMS, CODE_ITEMS
from corpus.demo.reference import REFERENCE

ACME = {
    "generator_model": "acme-chat",
    "generator_version": "1.2",
    "sampling_params": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 300},
}
ORBIT = {
    "generator_model": "orbit-7b",
    "generator_version": "0.3",
    "sampling_params": {
        "temperature": 1.2,
        "top_k": 40,
        "repetition_penalty": 1.0,
        "max_tokens": 400,
    },
}
LUMEN = {
    "generator_model": "lumen-instruct",
    "generator_version": "2.0",
    "sampling_params": {"temperature": 0.4, "top_p": 0.95, "max_tokens": 350, "seed": 7},
}


def _reference_text(external_id: str) -> str:
    return next(text for ext, _, text in REFERENCE if ext == external_id)


def _edit(text: str, *replacements: tuple[str, str]) -> str:
    """A near-copy: the reference text with a few words swapped (each swap must apply)."""
    for old, new in replacements:
        if old not in text:
            raise ValueError(f"demo near-duplicate: {old!r} is not in the reference text")
        text = text.replace(old, new, 1)
    return text


def _item(
    external_id: str,
    text: str,
    *,
    case: str,
    prompt: str,
    generator: dict[str, Any],
    parents: list[str] | None = None,
    topic: str = "",
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"demo_case": case}
    if topic:
        metadata["topic"] = topic
    item: dict[str, Any] = {
        "external_id": external_id,
        "text": text,
        "origin": "synthetic",
        "prompt": prompt,
        **generator,
        "metadata": metadata,
    }
    if parents:
        item["parents"] = parents
    return item


_SUNDIAL = (
    "A sundial tells time by the shadow of a fixed pointer, called the gnomon, falling on a "
    "marked face. As the Earth rotates, the Sun appears to move across the sky from east to "
    "west, and the shadow sweeps around the dial in the opposite direction. For the hour lines "
    "to stay accurate throughout the year, the gnomon must point toward the celestial pole, "
    "which means its angle matches the latitude where the dial is installed. Sundials show "
    "local solar time, so their reading can differ from clock time by up to a quarter of an "
    "hour depending on the season."
)

ACME_ITEMS = [
    _item(
        "acme-sundial",
        _SUNDIAL,
        case="clean",
        prompt="Explain how a sundial tells time, in one paragraph.",
        generator=ACME,
        topic="astronomy",
    ),
    _item(
        "acme-lighthouse",
        "Lighthouses use distinct light patterns, known as characteristics, so that sailors can "
        "tell one from another at night. A characteristic combines the colour of the light, the "
        "number of flashes and the length of the full cycle. One lighthouse might show two white "
        "flashes every ten seconds, while its neighbour along the coast shows a single red flash "
        "every five. These patterns are printed on nautical charts and in official light lists, "
        "allowing a navigator to identify a light, fix the ship's position and avoid the hazards "
        "it marks.",
        case="clean",
        prompt="Why do lighthouses have different light patterns?",
        generator=ACME,
        topic="navigation",
    ),
    _item(
        "acme-balcony-garden",
        "Starting a vegetable garden on a balcony is easier than many people expect. First, "
        "observe how many hours of direct sun the space receives; tomatoes and peppers need at "
        "least six, while lettuce, spinach and herbs such as parsley tolerate partial shade. "
        "Choose containers with drainage holes and use a quality potting mix rather than garden "
        "soil, which compacts in pots. Water deeply but less often, checking the soil with a "
        "finger before watering. Finally, start small: three or four well-tended pots will "
        "produce more than a crowded balcony of struggling plants.",
        case="clean",
        prompt="Give practical tips for a first vegetable garden on a balcony.",
        generator=ACME,
        topic="gardening",
    ),
    _item(
        "acme-vaccines",
        "Vaccines train the immune system by showing it a harmless version or piece of a "
        "pathogen, such as an inactivated virus or a single protein from its surface. The "
        "immune system responds as it would to a real infection: it produces antibodies and "
        "activates specialised cells that recognise that particular target. Crucially, some of "
        "these cells become long-lived memory cells. If the real pathogen appears later, the "
        "memory cells recognise it quickly and mount a faster, stronger response, often "
        "preventing illness entirely or making it much milder.",
        case="clean",
        prompt="Summarise how vaccines train the immune system.",
        generator=ACME,
        topic="health",
    ),
    _item(
        "acme-water-cycle",
        "The water cycle is the journey water takes around our planet, again and again. When "
        "the Sun warms oceans, lakes and rivers, some water turns into an invisible gas called "
        "water vapour and rises into the air. High up, where it is colder, the vapour cools and "
        "forms tiny droplets that gather into clouds. When the droplets grow heavy enough, they "
        "fall back to the ground as rain or snow. That water flows into rivers, soaks into the "
        "soil or returns to the sea, and then the whole cycle begins once more.",
        case="clean",
        prompt="Describe the water cycle for a ten-year-old.",
        generator=ACME,
        topic="science",
    ),
    _item(
        "acme-db-index",
        "A database index is a separate data structure that helps the database find rows "
        "without scanning an entire table. Most relational databases use a B-tree, which keeps "
        "the indexed values sorted and lets a lookup jump to the right place in a few steps, "
        "much like using the index at the back of a book. Indexes speed up searches, joins and "
        "sorting on the indexed columns, but they are not free: each index takes disk space and "
        "must be updated on every insert, update and delete. Good indexing means choosing the "
        "columns your most frequent queries actually filter on.",
        case="clean",
        prompt="What is a database index? Keep it to one paragraph.",
        generator=ACME,
        topic="software",
    ),
    _item(
        "acme-mountain-morning",
        "The village wakes slowly. Mist lies in the valley like spilled milk, and the only "
        "sound is a rooster somewhere below the church and the clink of a bell on a goat that "
        "wandered too far overnight. A baker props open her door and the smell of warm rye "
        "drifts up the cobbled lane. On the far slope, the first sunlight touches the pines one "
        "by one, as if someone were lighting candles along the ridge. By the time the bus "
        "coughs up the hairpin road at seven, the mist has thinned to threads.",
        case="clean",
        prompt="Describe a quiet morning in a mountain village.",
        generator=ACME,
        topic="fiction",
    ),
    _item(
        "acme-stale-bread",
        "Bread goes stale mainly because of a process called starch retrogradation, not simply "
        "because it dries out. When bread is baked, starch granules absorb water and lose their "
        "ordered structure. As the loaf cools and sits, the starch molecules gradually realign "
        "into a more crystalline form, pushing water out and making the crumb firm and "
        "crumbly. This happens fastest at refrigerator temperatures, which is why bread kept in "
        "the fridge stales sooner than bread kept on the counter. Briefly reheating stale bread "
        "can partly reverse the process.",
        case="clean",
        prompt="Explain why bread goes stale.",
        generator=ACME,
        topic="food",
    ),
    # Near-copies of human reference paragraphs: one or two words swapped keeps nearly all word
    # bigrams shared (Jaccard about 0.95); a handful of swaps spread across the text still keeps
    # 0.70 - 0.75, above the default 0.5 threshold: all are auto-rejected, naming the paragraph.
    _item(
        "acme-bike-chain",
        _edit(
            _reference_text("ref-bike-chain"),
            (
                "which is what happens if you ride a stretched one all winter",
                "which is exactly what happens if you ride a stretched one all winter",
            ),
        ),
        case="near_duplicate",
        prompt="How do I know when my bicycle chain needs replacing?",
        generator=ACME,
        topic="repair",
    ),
    _item(
        "acme-compost",
        _edit(
            _reference_text("ref-compost"),
            ("though nobody I know actually measures", "though few gardeners really measure"),
            ("Too much brown and it simply", "With too much brown it just"),
            ("and it is best left alone for a week", "so leave it alone for a week"),
        ),
        case="near_duplicate",
        prompt="What is the right balance of green and brown material in compost?",
        generator=ACME,
        topic="gardening",
    ),
]

ORBIT_ITEMS = [
    _item(
        "orbit-mug",
        "Meet your new favourite morning companion. Each mug is thrown by hand on the wheel in "
        "a small studio, then glazed in a deep speckled blue that shifts to sandy brown where "
        "the glaze thins at the rim. It holds a generous 350 ml, sits comfortably in both hands "
        "and is safe for the dishwasher and microwave. Because every piece is made by hand, "
        "yours will carry its own small marks and variations: proof that it came from a person, "
        "not a production line.",
        case="clean",
        prompt="Write a product description for a handmade ceramic mug.",
        generator=ORBIT,
        topic="commerce",
    ),
    _item(
        "orbit-offside",
        "In football, a player is in an offside position if any part of their head, body or "
        "feet is in the opponent's half and closer to the opponent's goal line than both the "
        "ball and the second-last defender. Being in that position is not an offence by itself. "
        "The player is penalised only if, at the moment a teammate plays the ball, they become "
        "involved in active play, for example by receiving the ball or blocking the "
        "goalkeeper's view. There is no offside from a goal kick, a throw-in or a corner kick.",
        case="clean",
        prompt="Explain the offside rule in football.",
        generator=ORBIT,
        topic="sport",
    ),
    _item(
        "orbit-owls",
        "Owls are built for hunting in the dark. Their large, forward-facing eyes gather what "
        "little light there is, but hearing does most of the work. In many species the ear "
        "openings sit at slightly different heights on each side of the head, so a sound "
        "reaches one ear a fraction of a second before the other, letting the owl pinpoint a "
        "mouse moving under snow. Soft, comb-like edges on the flight feathers break up the "
        "rush of air, so the owl descends almost silently and its prey rarely hears it coming.",
        case="clean",
        prompt="Describe how owls hunt at night.",
        generator=ORBIT,
        topic="nature",
    ),
    _item(
        "orbit-exam-note",
        "I know today's result feels heavy, and it is okay to be disappointed. But one exam is "
        "a snapshot of one morning, not a measure of what you are capable of. You have already "
        "shown that you can work hard and keep going when things are difficult. Take a day to "
        "rest, then let's sit down together and look at which questions tripped you up. Most of "
        "the time it comes down to two or three topics, and those can be fixed. I am proud of "
        "your effort, and I believe you will pass next time.",
        case="clean",
        prompt="Write an encouraging note to a student who failed an exam.",
        generator=ORBIT,
        topic="education",
    ),
    _item(
        "orbit-inflation",
        "Inflation is the general rise in prices across an economy over time, which means the "
        "same amount of money buys a little less each year. It is usually measured with a "
        "price index that tracks the cost of a typical basket of goods and services. Moderate "
        "inflation is considered normal in a growing economy, and many central banks aim for "
        "about two percent a year. Problems arise when inflation is high or unpredictable: "
        "savings lose value, wages struggle to keep up, and businesses find it hard to plan.",
        case="clean",
        prompt="Explain what inflation is in plain language.",
        generator=ORBIT,
        topic="economics",
    ),
    # The same text acme-chat gave for the sundial prompt, with different spacing: the
    # normalized content hash matches, so scoring names it an exact duplicate.
    _item(
        "orbit-sundial",
        "  " + _SUNDIAL.replace(". ", ".  ") + "\n",
        case="exact_duplicate",
        prompt="How does a sundial work?",
        generator=ORBIT,
        topic="astronomy",
    ),
    _item(
        "orbit-jupiter",
        _edit(
            _reference_text("ref-jupiter-moons"),
            ("Even a cheap pair of binoculars", "Even an inexpensive pair of binoculars"),
        ),
        case="near_duplicate",
        prompt="Can you see Jupiter's moons without a telescope?",
        generator=ORBIT,
        topic="astronomy",
    ),
    _item(
        "orbit-heat-pump",
        _edit(
            _reference_text("ref-heat-pump"),
            ("before the system feels comfortable", "before the house feels warm"),
        ),
        case="near_duplicate",
        prompt="How does a heat pump heat a house?",
        generator=ORBIT,
        topic="energy",
    ),
    _item(
        "orbit-rail",
        _edit(
            _reference_text("ref-rail-signals"),
            (
                "Railway lines are divided into blocks",
                "Rail networks are split into sections called blocks",
            ),
            ("the signal before that shows a warning", "the one before it shows a caution"),
            ("with bells and coded rings", "using bells and coded sequences"),
            ("but the principle", "yet the principle"),
        ),
        case="near_duplicate",
        prompt="How do railway signals keep trains apart?",
        generator=ORBIT,
        topic="infrastructure",
    ),
    # Looping and padded generations (high temperature, no repetition penalty).
    _item(
        "orbit-loop-cooking",
        "The best way to learn to cook is to practice every day. "
        + "The best way to learn to cook is to practice every day, and the more you cook the "
        "better you get. " * 9,
        case="degenerate",
        prompt="What is the best way to learn to cook?",
        generator=ORBIT,
        topic="food",
    ),
    _item(
        "orbit-stutter",
        "Here are some tips for staying focused while studying: put your phone in another room "
        "and and and and and and and and and and and and and and and and and and and and and "
        "and and and and and and and and and and and and and and and and and and and and and "
        "and and and and and and and and and and and and and and and and and and and and and "
        "and and and and and and and and and and and and and and and and and and and and and.",
        case="degenerate",
        prompt="Give tips for staying focused while studying.",
        generator=ORBIT,
        topic="education",
    ),
    _item(
        "orbit-list-loop",
        "Ten habits for better health: "
        + " ".join(
            f"{n}. Drink plenty of water and get enough sleep every night." for n in range(1, 11)
        )
        + " "
        + " ".join(
            f"{n}. Drink plenty of water and get enough sleep every night." for n in range(11, 21)
        ),
        case="degenerate",
        prompt="List ten habits for better health.",
        generator=ORBIT,
        topic="health",
    ),
    _item(
        "orbit-sea-poem",
        "Sure! Here is a poem about the sea. "
        + "The waves come in, the waves go out, the gulls cry over the harbour wall. " * 8,
        case="degenerate",
        prompt="Write a short poem about the sea.",
        generator=ORBIT,
        topic="poetry",
    ),
]

# Items a scraper collected with no reliable provenance: the producer declares "unknown".
SCRAPE_ITEMS = [
    {
        "external_id": "forum-8812",
        "text": "Does anyone else find that their monstera only puts out new leaves in spring? "
        "Mine sat completely still from October to March, then suddenly pushed out three "
        "leaves in a month. I moved it closer to the window in February, so maybe it was the "
        "light and not the season. Curious what others have seen before I start fiddling "
        "with fertiliser.",
        "origin": "unknown",
        "metadata": {"demo_case": "unknown_origin", "topic": "houseplants", "forum": "greenroom"},
    },
    {
        "external_id": "forum-9047",
        "text": "Tried the lentil soup recipe from page two of this thread. Added a spoon of "
        "smoked paprika and a squeeze of lemon at the end, which I would recommend to "
        "anyone. Cooking time was longer than stated, closer to fifty minutes, but my lentils "
        "were from the back of the cupboard and probably ancient.",
        "origin": "unknown",
        "metadata": {"demo_case": "unknown_origin", "topic": "cooking", "forum": "greenroom"},
    },
]

# Paragraphs people wrote and sent in (origin human, not reference): what a reviewer approves
# most readily, and the human share of the approved set on the dashboard.
HUMAN_ITEMS = [
    {
        "external_id": "letter-allotment",
        "text": "Our allotment committee finally agreed to share one big compost bay instead of "
        "twelve little heaps. The first month was chaos: someone threw in a whole pumpkin, "
        "someone else a bag of grass cuttings that turned to slime. By August we had a rota, "
        "a sign in three languages and the best crumbly soil I have seen on that hill.",
        "origin": "human",
        "metadata": {"demo_case": "human_contribution", "topic": "gardening"},
    },
    {
        "external_id": "letter-night-bus",
        "text": "I drove the N29 for eleven years. People think night buses are rowdy, and on "
        "Saturdays they can be, but most nights it is nurses, bakers and cleaners half asleep "
        "against the glass. One regular knitted me a scarf the winter the heater broke. I "
        "still wear it, though it is more hole than wool by now.",
        "origin": "human",
        "metadata": {"demo_case": "human_contribution", "topic": "work"},
    },
    {
        "external_id": "letter-chess-club",
        "text": "The chess club meets in the library basement on Thursdays. Nobody checks "
        "ratings. Last week an eight-year-old beat a retired engineer with a trap he had "
        "learned from a cartoon, and the engineer laughed so hard the librarian came down "
        "to shush us. We lost two pawns from the club set years ago and use coat buttons.",
        "origin": "human",
        "metadata": {"demo_case": "human_contribution", "topic": "games"},
    },
    {
        "external_id": "letter-tide-tables",
        "text": "Growing up on the estuary, we learned the tide tables before the alphabet, "
        "or so my mother claimed. You could walk to the island at low water if you left "
        "before the church bell and came back before the ferry's second run. My cousin "
        "misjudged it once and spent a cold night in the birdwatchers' hide, eating their "
        "emergency biscuits.",
        "origin": "human",
        "metadata": {"demo_case": "human_contribution", "topic": "places"},
    },
    {
        "external_id": "letter-sourdough-fail",
        "text": "My sourdough starter died twice before I learned that my flat is simply too "
        "cold in February. Now it lives on top of the fridge, wrapped in a tea towel like a "
        "small sulking pet. The loaves are still uneven, one side always taller, but the "
        "neighbours keep asking for the heels, which I take as a compliment.",
        "origin": "human",
        "metadata": {"demo_case": "human_contribution", "topic": "cooking"},
    },
]

# Rewrites: lumen-instruct takes earlier outputs (and one human paragraph) and rewrites them,
# sometimes rewriting its own rewrite, which is how generation depth climbs.
LUMEN_ITEMS = [
    _item(
        "lumen-water-simple",
        "Water keeps moving in a big circle. The Sun heats the sea, and some of the water "
        "floats up into the sky as vapour you cannot see. Up high it gets cold, so the vapour "
        "turns into little drops, and the drops make clouds. When the clouds get too heavy, "
        "the water falls as rain or snow. It runs into rivers and back to the sea, and the "
        "circle starts again.",
        case="rewrite",
        prompt="Rewrite this for a six-year-old, using short sentences.",
        generator=LUMEN,
        parents=["@acme-chat/acme-water-cycle"],
        topic="science",
    ),
    _item(
        "lumen-water-verse",
        "The Sun warms up the sea so blue, and water rises, out of view. It cools up high and "
        "turns to cloud, then falls as rain, both soft and loud. It finds the rivers, finds "
        "the shore, and round it goes for evermore.",
        case="rewrite",
        prompt="Turn this explanation into a short rhyming verse.",
        generator=LUMEN,
        parents=["lumen-water-simple"],
        topic="science",
    ),
    _item(
        "lumen-index-exec",
        "Think of a database index as the table of contents for your company's data. "
        "Without one, every question the business asks forces the system to read every "
        "record, which gets slower as the data grows. With the right indexes, common reports "
        "and customer lookups return in milliseconds. The trade-off is modest: indexes use "
        "extra storage and slightly slow down data entry, so engineering teams add them where "
        "the business asks the same questions most often.",
        case="rewrite",
        prompt="Rewrite this for a non-technical executive audience.",
        generator=LUMEN,
        parents=["@acme-chat/acme-db-index"],
        topic="software",
    ),
    _item(
        "lumen-index-slide",
        "Database indexes in one slide: they make frequent lookups fast, they cost some "
        "storage and a little write speed, and they should follow the questions the business "
        "asks most. Without them, reports slow down as data grows; with too many, every "
        "update pays for indexes nobody uses.",
        case="rewrite",
        prompt="Condense this into speaker notes for a single slide.",
        generator=LUMEN,
        parents=["lumen-index-exec"],
        topic="software",
    ),
    _item(
        "lumen-index-faq",
        "Q: Why do our reports slow down as the company grows? A: Because without an index the "
        "system reads every record to answer each question. Q: Is adding indexes risky? A: "
        "Not really; they take extra storage and make saving data slightly slower, so teams "
        "add them only where the same questions come up again and again.",
        case="rewrite",
        prompt="Turn this explanation into a two-question FAQ.",
        generator=LUMEN,
        parents=["lumen-index-exec"],
        topic="software",
    ),
    _item(
        "lumen-coast-guide",
        "Along the coast, two things help you find your way after dark. Lighthouses each have "
        "their own rhythm of flashes, listed on charts, so a sailor can tell which one is "
        "which. And the sky itself keeps time: a sundial's shadow, or the Sun's height at noon, "
        "told earlier sailors both the hour and how far north they had come.",
        case="rewrite",
        prompt="Combine these two explanations into one paragraph for a sailing club newsletter.",
        generator=LUMEN,
        parents=["@acme-chat/acme-lighthouse", "@acme-chat/acme-sundial"],
        topic="navigation",
    ),
    _item(
        "lumen-choir-blurb",
        "Love to sing but never read a note of music? Our community choir rehearses every "
        "Thursday evening and welcomes all voices, whatever your experience. Parts are learned "
        "by ear from practice recordings, warm-ups are gentle and a little silly, and the "
        "end-of-term concert is a friendly, sold-out evening for family and friends. Come along "
        "to any rehearsal and try it out.",
        case="rewrite",
        prompt="Rewrite this as a recruitment blurb for the village newsletter.",
        generator=LUMEN,
        parents=["@reference-essays/ref-choir"],
        topic="community",
    ),
]

REFERENCE_SOURCE = "reference-essays"

# (source, reference?, items) in the order they are ingested: a batch may point at items of the
# batches before it.
BATCHES: list[tuple[str, bool, list[dict[str, Any]]]] = [
    (
        REFERENCE_SOURCE,
        True,
        [
            {
                "external_id": ext,
                "text": text,
                "origin": "human",
                "metadata": {"demo_case": "reference", "topic": topic},
            }
            for ext, topic, text in REFERENCE
        ],
    ),
    ("acme-chat", False, ACME_ITEMS),
    ("orbit-7b", False, ORBIT_ITEMS),
    ("forum-scrape", False, SCRAPE_ITEMS),
    ("community-letters", False, HUMAN_ITEMS),
    ("lumen-instruct", False, LUMEN_ITEMS),
    ("helpdesk-assistant", False, CHAT_ITEMS),
    ("orbit-coder", False, CODE_ITEMS),
]
