"""Build the shipped demo QA relevance set from a small made-up encyclopedia (no external data).

The world: invented towns, people and animal species, each with a few facts (a town's river, founding
year, population, product, province and mayor; a person's birthplace, field, invention and death year;
an animal's habitat, food, size and lifespan). A question asks for one fact of one entity and comes with
six candidate passages: the one that answers it, two other facts of the same entity (right subject,
wrong fact), two passages with the same kind of fact about other entities of that kind (right fact,
wrong subject) and one passage from another kind of entity. Every question and passage is written from
a few phrasings, so a ranker has to match both the subject and the kind of fact asked for.

Files (tab-separated, columns qid, question, passage, label; the unlabeled files have no label):
- demo_qa_train.tsv: questions on the training entities, six candidates each;
- demo_qa_test.tsv: questions on entities that appear nowhere else, six candidates each;
- demo_questions.txt / demo_passages.txt: more questions and a passage pool on further entities and
  the training entities, without labels, for the stage-1 corpus (`bertdistill corpus --mine bm25`).

Written by the bertdistill authors for the demo. Run from this folder: python make_demo_qa.py
(deterministic; tests/test_demo_data.py checks that the shipped files are what it writes).
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 13
TRAIN_ENTITIES = {"town": 48, "person": 40, "animal": 32}
TEST_ENTITIES = {"town": 14, "person": 12, "animal": 10}
EXTRA_ENTITIES = {"town": 40, "person": 32, "animal": 28}  # only in the unlabeled stage-1 files
QUESTIONS_PER_ENTITY = {"train": 3, "test": 2}

SYLLABLES = ["var", "nel", "thor", "bas", "kel", "mor", "dan", "sil", "tor", "wen", "ost", "ril", "gar", "lin",
             "bre", "fal", "hum", "ver", "quen", "dra", "pel", "sor", "tam", "vik", "lor", "mes", "cal", "don",
             "ebb", "fen", "hal", "jor", "kas", "lum", "nor", "pim", "rus", "tal", "ul", "zan"]
TOWN_ENDINGS = ["holm", "ford", "by", "stead", "wick", "mere", "dale", "ton", "burg", "haven"]
FIRST_NAMES = ["Ada", "Bruno", "Clara", "Dmitri", "Elsa", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaija",
               "Leon", "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tilda", "Umar", "Vera", "Wim"]
ANIMAL_KINDS = ["beetle", "frog", "heron", "lizard", "moth", "otter", "shrew", "finch", "eel", "bat"]
RIVERS = ["Ossel", "Tarve", "Lumen", "Brask", "Quill", "Maren", "Sedge", "Varro", "Elde", "Kinnet", "Pallow", "Rhune"]
PROVINCES = ["Northmark", "Westfold", "Lowmere", "Highcairn", "Easting", "Southreach", "Greyvale", "Redmoor"]
PRODUCTS = ["blue cheese", "glass bottles", "wool blankets", "pear cider", "copper pots", "rye bread",
            "clay tiles", "smoked fish", "paper lanterns", "leather boots", "honey cakes", "pocket watches"]
FIELDS = ["volcanoes", "bird song", "tidal currents", "crystal growth", "ancient coins", "soil fungi",
          "star clusters", "glacier ice", "river fish", "weather fronts", "old maps", "moss species"]
INVENTIONS = ["folding telescope", "water clock", "rope bridge", "steam kettle", "paper press", "wind gauge",
              "glass lens", "brass compass", "seed drill", "pocket sundial", "cable winch", "oil lamp"]
HABITATS = ["cold mountain lakes", "salt marshes", "pine forests", "desert caves", "river deltas",
            "high meadows", "coral reefs", "bamboo thickets", "peat bogs", "rocky coasts"]
FOODS = ["snails", "ripe figs", "water beetles", "pine seeds", "small fish", "tree sap", "grasshoppers",
         "algae", "wild berries", "earthworms"]

# kind -> fact -> (question phrasings, passage phrasings); {e} is the entity, {v} the fact's value.
FACTS = {
    "town": {
        "river": (["which river flows through {e}", "what river runs through {e}", "name of the river in {e}"],
                  ["The {v} river flows through {e} on its way to the sea.", "{e} lies on the banks of the {v} river."]),
        "founded": (["when was {e} founded", "what year was {e} founded", "how old is the town of {e}"],
                    ["{e} was founded in the year {v}.", "The town of {e} dates back to its founding in {v}."]),
        "population": (["how many people live in {e}", "what is the population of {e}"],
                       ["{e} has a population of about {v} people.", "Around {v} people live in {e} today."]),
        "product": (["what is {e} known for", "what does {e} produce", "what is made in {e}"],
                    ["{e} is best known for its {v}.", "The workshops of {e} have made {v} for centuries."]),
        "province": (["in which province is {e}", "where is {e} located", "what region is {e} in"],
                     ["{e} is a town in the province of {v}.", "The province of {v} includes the town of {e}."]),
        "mayor": (["who is the mayor of {e}", "who runs the town of {e}"],
                  ["The current mayor of {e} is {v}.", "{v} was elected mayor of {e} last spring."]),
    },
    "person": {
        "born": (["where was {e} born", "what town is {e} from", "birthplace of {e}"],
                 ["{e} was born in the town of {v}.", "{e} grew up in {v}, where she or he was born."]),
        "field": (["what did {e} study", "what was {e} an expert on", "research field of {e}"],
                  ["{e} spent a long career studying {v}.", "As a scientist, {e} wrote many papers on {v}."]),
        "invention": (["what did {e} invent", "which device is {e} famous for", "what is {e} credited with inventing"],
                      ["{e} is credited with inventing the {v}.", "The first {v} was built by {e}."]),
        "died": (["when did {e} die", "what year did {e} pass away"],
                 ["{e} died in {v} after a short illness.", "{e} passed away in the year {v}."]),
    },
    "animal": {
        "habitat": (["where does the {e} live", "what is the habitat of the {e}", "where can you find the {e}"],
                    ["The {e} lives in {v}.", "The {e} is found mostly in {v}."]),
        "diet": (["what does the {e} eat", "what is the diet of the {e}", "what food does the {e} hunt"],
                 ["The {e} feeds mostly on {v}.", "The diet of the {e} consists largely of {v}."]),
        "size": (["how big is the {e}", "how long does the {e} grow", "size of an adult {e}"],
                 ["An adult {e} grows to about {v} centimetres long.", "The {e} reaches a length of {v} centimetres."]),
        "lifespan": (["how long does the {e} live", "what is the lifespan of the {e}", "how many years can a {e} live"],
                     ["The {e} can live for up to {v} years.", "A {e} in the wild lives about {v} years."]),
    },
}


def make_entities(rng: random.Random, counts: dict[str, int], taken: set[str]) -> list[tuple[str, str, dict]]:
    """(kind, name, facts) for `counts` new entities whose names are not in `taken`."""
    entities = []
    for kind, count in counts.items():
        made = 0
        while made < count:
            stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([1, 2]))).capitalize()
            if kind == "town":
                name = stem + rng.choice(TOWN_ENDINGS)
                facts = {"river": rng.choice(RIVERS), "founded": str(rng.randint(1100, 1890)),
                         "population": f"{rng.randint(2, 95)},{rng.randint(0, 999):03d}",
                         "product": rng.choice(PRODUCTS), "province": rng.choice(PROVINCES),
                         "mayor": f"{rng.choice(FIRST_NAMES)} {stem}ski"}
            elif kind == "person":
                name = f"{rng.choice(FIRST_NAMES)} {stem}son"
                facts = {"born": "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize() + rng.choice(TOWN_ENDINGS),
                         "field": rng.choice(FIELDS), "invention": rng.choice(INVENTIONS),
                         "died": str(rng.randint(1700, 1990))}
            else:
                name = f"{stem.lower()} {rng.choice(ANIMAL_KINDS)}"
                facts = {"habitat": rng.choice(HABITATS), "diet": rng.choice(FOODS),
                         "size": str(rng.randint(3, 180)), "lifespan": str(rng.randint(2, 60))}
            if name.lower() in taken:
                continue
            taken.add(name.lower())
            entities.append((kind, name, facts))
            made += 1
    return entities


def passage(rng: random.Random, kind: str, name: str, fact: str, value: str) -> str:
    return rng.choice(FACTS[kind][fact][1]).format(e=name, v=value)


def question(rng: random.Random, kind: str, name: str, fact: str) -> str:
    return rng.choice(FACTS[kind][fact][0]).format(e=name)


def labeled_rows(rng: random.Random, entities, pool, per_entity: int, prefix: str) -> list[tuple]:
    """Six candidates per question: the answer, 2 same-subject, 2 same-fact and 1 other-kind negatives."""
    rows, number = [], 0
    for kind, name, facts in entities:
        same_kind = [e for e in pool if e[0] == kind and e[1] != name]
        other_kind = [e for e in pool if e[0] != kind]
        for fact in rng.sample(sorted(facts), per_entity):
            qid = f"{prefix}{number:04d}"
            number += 1
            candidates = [(passage(rng, kind, name, fact, facts[fact]), 1)]
            for other_fact in rng.sample([f for f in sorted(facts) if f != fact], 2):
                candidates.append((passage(rng, kind, name, other_fact, facts[other_fact]), 0))
            for other in rng.sample(same_kind, 2):
                candidates.append((passage(rng, kind, other[1], fact, other[2][fact]), 0))
            o_kind, o_name, o_facts = rng.choice(other_kind)
            o_fact = rng.choice(sorted(o_facts))
            candidates.append((passage(rng, o_kind, o_name, o_fact, o_facts[o_fact]), 0))
            rng.shuffle(candidates)
            text = question(rng, kind, name, fact)
            rows += [(qid, text, p, label) for p, label in candidates]
    return rows


def build(seed: int = SEED) -> dict[str, list[str]]:
    """The lines of every shipped file, by file name."""
    rng = random.Random(seed)
    taken: set[str] = set()
    train = make_entities(rng, TRAIN_ENTITIES, taken)
    test = make_entities(rng, TEST_ENTITIES, taken)
    extra = make_entities(rng, EXTRA_ENTITIES, taken)
    header = "qid\tquestion\tpassage\tlabel"
    files = {
        "demo_qa_train.tsv": [header] + ["\t".join(map(str, r)) for r in
                                         labeled_rows(rng, train, train, QUESTIONS_PER_ENTITY["train"], "q")],
        # Test negatives come from test entities only, so no test passage is seen in training.
        "demo_qa_test.tsv": [header] + ["\t".join(map(str, r)) for r in
                                        labeled_rows(rng, test, test, QUESTIONS_PER_ENTITY["test"], "t")],
    }
    # Stage-1 material: every fact of the extra entities and the training entities' remaining facts,
    # asked once and stated once; nothing about the test entities.
    questions, passages = [], []
    for kind, name, facts in train + extra:
        for fact, value in sorted(facts.items()):
            questions.append(question(rng, kind, name, fact))
            passages.append(passage(rng, kind, name, fact, value))
    rng.shuffle(questions)
    rng.shuffle(passages)
    files["demo_questions.txt"] = list(dict.fromkeys(questions))
    files["demo_passages.txt"] = list(dict.fromkeys(passages))
    return files


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, lines in build().items():
        (here / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{name}: {len(lines)} lines")


if __name__ == "__main__":
    main()
