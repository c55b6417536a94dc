"""Human reference paragraphs of the demo dataset, written for Synthgate.

They play the human corpus that novelty is measured against: varied topics, first-person
asides, uneven sentence lengths, the small digressions people make and generators rarely do.
"""

# (external_id, topic, text)
REFERENCE: list[tuple[str, str, str]] = [
    (
        "ref-sourdough",
        "baking",
        "My starter lives on the second shelf of the fridge and gets fed on Sunday nights, "
        "whether it deserves it or not. I pour off the grey liquid that collects on top, keep "
        "about a spoonful of the old paste, and stir in equal weights of rye flour and lukewarm "
        "water. If the kitchen is cold it takes most of a day to double; in August it is ready "
        "before lunch. The smell tells you more than any schedule does. Sharp and vinegary means "
        "it went hungry too long, while a faint smell of yoghurt and green apples means the next "
        "loaf will rise well.",
    ),
    (
        "ref-tidepools",
        "nature",
        "At low tide the rocks below the lighthouse turn into a row of shallow basins, each with "
        "its own tenants. Anemones fold shut when the water drains away and open again the moment "
        "a wave refills them. The hermit crabs are the comedians: they trade shells in a hurry, "
        "sometimes squabbling over one that fits neither of them. We always tell visiting "
        "children the same two rules. Turn a stone over only if you can put it back exactly the "
        "way it was, and never pull a limpet off the rock, because it cannot reattach and the "
        "gulls will have it within the hour.",
    ),
    (
        "ref-bike-chain",
        "repair",
        "A chain that squeaks is asking for oil, but a chain that skips under load is usually "
        "worn, and no amount of oil will fix that. I check mine with a plain steel ruler: "
        "twelve full links should measure exactly twelve inches when new, and once they stretch "
        "past twelve and an eighth the chain starts chewing the cassette. Replacing a chain costs "
        "far less than replacing a chain, a cassette and the front rings together, which is what "
        "happens if you ride a stretched one all winter. Wipe it after wet rides, oil it "
        "sparingly, and wipe it again so the outside stays dry.",
    ),
    (
        "ref-water-treatment",
        "infrastructure",
        "Before the water in our town reaches a tap it has been through a surprisingly physical "
        "process. River water is dosed with a coagulant so that fine clay particles clump "
        "together, and the clumps settle out in long, slow tanks. What is left passes down "
        "through beds of sand and anthracite, then gets a measured dose of chlorine. The plant "
        "operator I talked to spends more of her week on the filters than on the chemistry: a "
        "filter bed that is not backwashed on time clogs, and pressure builds until the whole "
        "line has to be taken out of service. Clean water, she said, is mostly plumbing and "
        "patience.",
    ),
    (
        "ref-old-maps",
        "history",
        "Early printed maps were cut into wood or engraved into copper, and each method left its "
        "fingerprints. A woodcut gives bold, slightly blunt lines and lettering that often had to "
        "be set with metal type pushed into holes in the block. Copper allowed fine hatching for "
        "hills and tiny, elegant script, which is why engraved maps came to dominate once "
        "printers could afford them. Plates were corrected rather than replaced, so the same "
        "copper might be reworked for a century. Collectors date a sheet by spotting those "
        "changes: a new road here, a coastline pushed outward there, a town renamed after a "
        "war.",
    ),
    (
        "ref-bees-winter",
        "nature",
        "In winter a honeybee colony does not sleep. The bees form a tight cluster around the "
        "queen and shiver their flight muscles to make heat, keeping the middle of the ball "
        "warm even when frost coats the hive. The cluster creeps slowly across the combs, eating "
        "the honey stored above and beside it. The danger is not usually the cold itself but a "
        "cluster that has eaten its way into a corner and cannot reach food a few inches away. "
        "On a mild afternoon in February I lift the roof for ten seconds, look at where the "
        "bees are, and slide a block of fondant right above them if the stores look thin.",
    ),
    (
        "ref-language-adult",
        "learning",
        "I started learning Portuguese at forty-three, and the first surprise was how little "
        "grammar drills helped compared with plain listening. For months I played the same "
        "twenty-minute radio interview on my commute until I could follow every joke in it. "
        "Vocabulary stuck when it was attached to a scene: I still remember the word for "
        "receipt because a baker in Porto insisted on giving me one for a single bread roll. "
        "Adults do have one real advantage over children. We can ask why a sentence is built "
        "the way it is, and sometimes the answer turns a dozen separate rules into one.",
    ),
    (
        "ref-heat-pump",
        "energy",
        "A heat pump works like a refrigerator pointed at the outdoors. A refrigerant that boils "
        "at a very low temperature soaks up warmth from outside air, even freezing air, and a "
        "compressor squeezes that vapour until it is hotter than the water in the radiators. "
        "The heat moves indoors and the cycle repeats. Because the machine moves heat rather "
        "than making it, one unit of electricity can deliver three or four units of heat. The "
        "catch is that it prefers low, steady flow temperatures, so old houses with small "
        "radiators often need a few larger ones before the system feels comfortable.",
    ),
    (
        "ref-volunteer-fire",
        "community",
        "Our fire brigade has twenty-two volunteers, one engine, one tanker and a pager system "
        "that goes off at the worst possible moments. Most calls are not fires at all. We pump "
        "out flooded cellars, clear fallen trees off the county road and sit with people after "
        "car accidents until the ambulance arrives from town, which can take forty minutes. "
        "Training is every Tuesday night, and the hardest part of the job is not the physical "
        "work but keeping enough people available during working hours, when half of us are "
        "commuting to jobs forty kilometres away.",
    ),
    (
        "ref-compost",
        "gardening",
        "A compost heap wants roughly two parts brown material to one part green, though nobody "
        "I know actually measures. Browns are dry leaves, straw and torn cardboard; greens are "
        "grass clippings, vegetable peelings and coffee grounds. Too much green and the heap "
        "turns slimy and smells of ammonia. Too much brown and it simply sits there for two "
        "years. Turning it once a month with a fork lets air in and speeds things up a lot. When "
        "the middle of a heap is too hot to keep your hand in, the microbes are doing their work "
        "properly, and it is best left alone for a week.",
    ),
    (
        "ref-chess-endgame",
        "games",
        "The first endgame every club player should learn is king and pawn against king, "
        "because so many longer games collapse into it. The key idea is opposition: when the "
        "two kings face each other with one square between them, the side that does not have to "
        "move holds the advantage. With the pawn on the sixth rank and the king beside it, the "
        "win is usually simple. With the pawn further back, everything depends on getting your "
        "king in front of the pawn first. Learning this one ending properly saves more half "
        "points than any opening trap ever will.",
    ),
    (
        "ref-jupiter-moons",
        "astronomy",
        "Even a cheap pair of binoculars, braced against a fence post, will show Jupiter's four "
        "large moons as tiny points of light lined up beside the planet. What makes them worth "
        "watching is that they move. Io can shift visibly in a couple of hours, and over a week "
        "the whole arrangement changes completely. Galileo saw exactly this in 1610 and "
        "realised the points were circling Jupiter, not the Earth. I keep a notebook of "
        "sketches: a dot for the planet, small crosses for the moons, and the date and time. "
        "After a month the pattern of their orbits is right there on the page.",
    ),
    (
        "ref-interlibrary",
        "libraries",
        "Interlibrary loan is one of the quiet miracles of public life. You fill in a short "
        "form, and a few weeks later a book from a university three hundred kilometres away "
        "arrives at your small branch library with a paper band around it. The band lists the "
        "due date and a warning not to remove it. Librarians arrange the whole exchange "
        "through shared catalogues and a courier van that makes the rounds every week. When I "
        "needed a 1950s report on hedgerow birds for a local history project, it came from a "
        "research station archive, and the only cost was the postage.",
    ),
    (
        "ref-dry-stone",
        "craft",
        "Rebuilding a dry-stone wall starts with taking the damaged section down further than "
        "seems necessary. You sort the stones into piles as you go: big flat ones for the "
        "footings, long ones for the throughs that tie both faces together, and rubble for the "
        "hearting in the middle. Each stone is laid so it covers the joint below it, one on "
        "two and two on one, and the faces lean slightly inward as the wall rises. A good "
        "waller rarely picks up the same stone twice. I pick up most of mine three or four "
        "times, which is why my stretch of wall took a whole weekend.",
    ),
    (
        "ref-commit-messages",
        "software",
        "A good commit message is written for the person who runs git blame two years from now "
        "while trying to understand why a line looks odd. The first line says what changed in "
        "under seventy characters. The body says why: the bug report, the measurement, the "
        "constraint that ruled out the obvious fix. What the diff already shows does not need "
        "repeating. The worst messages I have inherited said things like fix or cleanup, and "
        "the best one I remember explained in four sentences why a retry loop had to stop "
        "after exactly three attempts because of a vendor's rate limit.",
    ),
    (
        "ref-mushrooms",
        "nature",
        "The rule our foraging group repeats on every walk is simple: if you cannot name the "
        "mushroom with certainty, it goes in the photo album and not the basket. Several "
        "deadly species look ordinary, and some edible ones have poisonous twins that grow in "
        "the same woods in the same week. We check gill colour, spore prints, smell, the ring "
        "on the stem, and what the mushroom is growing on. Beginners learn five species "
        "thoroughly before they learn a sixth. Chanterelles are a favourite first one, partly "
        "because their false gills and apricot smell are so distinctive.",
    ),
    (
        "ref-ferry-island",
        "travel",
        "Living on an island means planning around the ferry in ways that mainlanders find "
        "strange. The last boat leaves the harbour at twenty past eight, so dinner invitations "
        "in town come with an unspoken curfew. In winter storms the crossing is cancelled for "
        "a day or two at a time, and the small shop runs out of milk first, then bread, then "
        "patience. Everyone keeps a spare freezer. The upside is that the crossing itself "
        "becomes part of the day: forty minutes with no signal, a cup of bad coffee and, on "
        "good mornings, porpoises off the starboard side.",
    ),
    (
        "ref-guitar-tuning",
        "music",
        "Before electronic tuners, most guitarists tuned by ear using the fifth-fret method. "
        "You press the low E string at the fifth fret and tune the open A string until the two "
        "notes stop beating against each other. The same trick works up the neck, except "
        "between the G and B strings, where you use the fourth fret instead. The slow wobble "
        "you hear when two notes are almost in tune is the useful part: as the wobble slows "
        "down and disappears, you are there. It takes longer than clipping a tuner to the "
        "headstock, but it trains your ear in a way no tuner can.",
    ),
    (
        "ref-glacier",
        "climate",
        "Every September a small team walks up to the snout of the glacier above our valley and "
        "measures how far it has retreated since the year before. The method is old-fashioned: "
        "painted marks on boulders, a measuring tape and a notebook, now backed up with a GPS "
        "receiver. The records go back to 1921. For the first few decades the front moved back "
        "and forth by a few metres; in the last twenty years it has lost more than three "
        "hundred. The oldest painted boulder now sits in a meadow, with grass and young willows "
        "growing around it.",
    ),
    (
        "ref-compound-interest",
        "money",
        "Compound interest is easiest to understand with a small, dull example. Put a hundred "
        "pounds away at five percent a year and after one year you have a hundred and five. "
        "In the second year the interest is paid on a hundred and five, not a hundred, so you "
        "end with a little over a hundred and ten. The difference looks trivial at first. Over "
        "thirty years, though, the same hundred pounds grows to more than four hundred, and "
        "most of that growth arrives in the last decade. This is why the first few years of "
        "saving matter so much more than they seem to at the time.",
    ),
    (
        "ref-shift-sleep",
        "health",
        "After six years of rotating shifts at the hospital, my best advice for sleeping during "
        "the day is to treat the bedroom like a cave. Blackout blinds, a fan for steady noise "
        "and a phone left in the kitchen. I eat a light meal before I go to bed rather than a "
        "big breakfast, because a full stomach keeps me up. The hardest change is the switch "
        "back to days off. I used to flip straight back to a normal schedule and feel awful for "
        "two days; now I split the difference and go to bed around two in the morning on the "
        "first night off.",
    ),
    (
        "ref-urban-trees",
        "cities",
        "On a hot afternoon the pavement under a row of mature plane trees can be ten degrees "
        "cooler than an open street a block away. Trees shade the ground, and they also "
        "release water through their leaves, which cools the air around them. Cities that "
        "plant trees for this reason have learned that the tree pit matters as much as the "
        "tree. A sapling squeezed into a small hole in compacted soil will struggle for years "
        "and die young. Larger pits with loose, connected soil under the pavement let roots "
        "spread and give the tree a chance to reach a useful size.",
    ),
    (
        "ref-knitting-gauge",
        "craft",
        "Knitting a gauge swatch feels like a waste of wool until the first time you skip it. "
        "The pattern says twenty-two stitches to ten centimetres, and your hands may produce "
        "twenty or twenty-four with the same needles and yarn. Over a sweater that difference "
        "adds up to several centimetres around the chest. I knit a square a little larger than "
        "ten centimetres, wash it the way I will wash the finished garment, let it dry flat "
        "and then count stitches in the middle, away from the edges. If the count is off, I "
        "change needle size, not the pattern.",
    ),
    (
        "ref-rail-signals",
        "infrastructure",
        "Railway lines are divided into blocks, and the basic rule is that only one train may "
        "occupy a block at a time. When a train enters a block, the signal behind it turns red, "
        "and the signal before that shows a warning so that a following driver has room to "
        "slow down. On older lines the blocks were controlled by signal boxes that talked to "
        "each other with bells and coded rings. Today track circuits detect trains "
        "automatically by the current their wheels and axles carry between the rails, but the "
        "principle of keeping one train per block has not changed.",
    ),
    (
        "ref-choir",
        "community",
        "Running a community choir taught me that attendance matters more than talent. Our "
        "group has forty members, a few of whom read music fluently and many who learn every "
        "part by ear from recordings I make on my phone. Rehearsal starts with ten minutes of "
        "breathing and silly warm-ups, which newcomers find embarrassing for exactly one week. "
        "We choose songs that sound good with uneven numbers, because on any given Thursday I "
        "might have twelve sopranos and two basses. The concert at the end of each term is "
        "short, a little rough, and always sold out to friends and family.",
    ),
    (
        "ref-fractions",
        "teaching",
        "When I teach fractions to nine-year-olds, I start in the kitchen corner of the "
        "classroom with measuring cups and a bag of dry rice. Filling a whole cup with the "
        "third-cup scoop takes three scoops, and no child argues with that. Filling the same "
        "cup with quarter-cup scoops takes four. The question of which is bigger, a third or a "
        "quarter, answers itself in a way that staring at the digits never does. Only after "
        "a few sessions with rice do we move to drawing the fractions, and only after that to "
        "writing them as numbers.",
    ),
]
