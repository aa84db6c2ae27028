"""Build the shipped demo QA relevance set (demo_qa.tsv) from hand-written topics.

Each topic has a question, one passage that answers it and two passages on the same subject that do
not; three passages from other topics are added as easy negatives. Written by the bertdistill
authors for the demo (no external data). Run from this folder: python make_demo_qa.py
"""

from __future__ import annotations

import random
from pathlib import Path

TOPICS = [
    ("how are glacier caves formed", "Glacier caves are formed when meltwater flows through or under a glacier and carves out a tunnel in the ice.",
     ["A glacier is a persistent body of dense ice that moves under its own weight.", "Some glacier caves are popular with tourists in Iceland during the winter."]),
    ("what is the capital of france", "Paris is the capital and the most populous city of France.",
     ["France is a country in western Europe with several overseas regions.", "The Loire valley in France is known for its castles and vineyards."]),
    ("who wrote pride and prejudice", "Pride and Prejudice is a novel written by Jane Austen and published in 1813.",
     ["The novel follows Elizabeth Bennet and her sisters in rural England.", "Many film and television adaptations of the story have been made."]),
    ("how many legs does a spider have", "Spiders are arachnids and have eight legs attached to the front part of the body.",
     ["Many spiders spin webs of silk to catch flying insects.", "The largest spiders live in the rain forests of South America."]),
    ("what is the boiling point of water", "At sea level pure water boils at 100 degrees Celsius, or 212 degrees Fahrenheit.",
     ["Water covers about seventy percent of the surface of the earth.", "Ice is less dense than liquid water, which is why it floats."]),
    ("when did the first man land on the moon", "Neil Armstrong became the first person to walk on the moon on 20 July 1969 during Apollo 11.",
     ["The moon is the only natural satellite of the earth.", "The Apollo program was run by NASA in the United States."]),
    ("what do bees make", "Honey bees collect nectar from flowers and turn it into honey, which they store in wax combs.",
     ["Bees live in colonies with a single queen and many workers.", "Some species of bees live alone rather than in hives."]),
    ("what is the largest ocean", "The Pacific Ocean is the largest and deepest of the earth's oceans.",
     ["Oceans influence the climate by storing and moving heat.", "The Atlantic Ocean separates the Americas from Europe and Africa."]),
    ("who painted the mona lisa", "The Mona Lisa was painted by the Italian artist Leonardo da Vinci in the early sixteenth century.",
     ["The painting hangs in the Louvre museum in Paris.", "The portrait is painted in oil on a poplar wood panel."]),
    ("how does photosynthesis work", "In photosynthesis plants use light energy to turn carbon dioxide and water into sugar and oxygen.",
     ["Plants are found on every continent, including Antarctica.", "Leaves change colour in autumn when chlorophyll breaks down."]),
    ("what is the speed of light", "Light travels through a vacuum at about 299,792 kilometres per second.",
     ["Light can be split into colours by a glass prism.", "Some animals can see ultraviolet light that humans cannot."]),
    ("what language is spoken in brazil", "The official and most widely spoken language of Brazil is Portuguese.",
     ["Brazil is the largest country in South America by area.", "The Amazon rain forest covers much of northern Brazil."]),
    ("how long is a marathon", "A marathon is a running race over a distance of 42.195 kilometres, about 26.2 miles.",
     ["Large city marathons attract tens of thousands of runners.", "Runners often train for several months before a marathon."]),
    ("what causes the seasons", "Seasons are caused by the tilt of the earth's axis, which changes how directly sunlight hits each hemisphere during the year.",
     ["Many birds migrate between summer and winter homes.", "Some regions near the equator have a wet and a dry season."]),
    ("who invented the telephone", "Alexander Graham Bell was granted the first patent for the telephone in 1876.",
     ["Mobile phones became common in the 1990s.", "Early telephone calls were connected by human switchboard operators."]),
    ("what is the tallest mountain in the world", "Mount Everest in the Himalayas is the highest mountain above sea level, at 8,849 metres.",
     ["Climbers use bottled oxygen at very high altitudes.", "The Himalayas stretch across several countries in Asia."]),
    ("why is the sky blue", "The sky looks blue because air molecules scatter short blue wavelengths of sunlight more than red ones.",
     ["At sunset the sky often turns orange and red.", "Clouds are made of tiny droplets of water or ice crystals."]),
    ("how many players are on a football team", "An association football team has eleven players on the field, including the goalkeeper.",
     ["The World Cup is held every four years.", "Football matches are divided into two halves of forty-five minutes."]),
    ("what is the chemical symbol for gold", "The chemical symbol for gold is Au, from the Latin word aurum.",
     ["Gold has been used for jewellery for thousands of years.", "Gold does not rust or tarnish in air."]),
    ("where do penguins live", "Most penguins live in the southern hemisphere, with many species in Antarctica and on nearby islands.",
     ["Penguins are birds that cannot fly but swim very well.", "Emperor penguins are the tallest of all penguin species."]),
    ("what is the largest planet", "Jupiter is the largest planet in the solar system, more than eleven times wider than the earth.",
     ["Planets orbit the sun on nearly flat paths.", "Saturn is famous for its bright system of rings."]),
    ("who discovered penicillin", "Alexander Fleming discovered penicillin in 1928 when mould killed bacteria in one of his dishes.",
     ["Antibiotics are medicines that fight bacterial infections.", "Overuse of antibiotics can lead to resistant bacteria."]),
    ("how many days are in a leap year", "A leap year has 366 days, with an extra day added on 29 February.",
     ["Calendars have been reformed several times in history.", "A week has seven days in most calendars used today."]),
    ("what is the main ingredient of guacamole", "Guacamole is a dip made mainly from mashed avocado with lime, onion and salt.",
     ["Mexican cuisine uses many kinds of chili peppers.", "Avocado trees grow best in warm climates."]),
    ("what is the freezing point of water", "Pure water freezes at 0 degrees Celsius, or 32 degrees Fahrenheit, at normal pressure.",
     ["Snowflakes form when water vapour freezes in clouds.", "Salt is spread on roads in winter to keep them safe."]),
    ("who was the first president of the united states", "George Washington served as the first president of the United States from 1789 to 1797.",
     ["The White House is the home of the American president.", "A presidential election is held every four years."]),
    ("how do vaccines work", "Vaccines train the immune system to recognise a germ so that the body can fight it quickly later.",
     ["Many vaccines are given to children in their first years.", "Doctors store some vaccines in refrigerators."]),
    ("what is the smallest country in the world", "Vatican City is the smallest independent country in the world by both area and population.",
     ["Rome is the capital city of Italy.", "Many small countries are islands in the Pacific Ocean."]),
    ("what is dna", "DNA is the molecule that carries the genetic instructions for the growth and function of living things.",
     ["Genetics is the study of how traits are inherited.", "Scientists sequenced the human genome in 2003."]),
    ("how hot is the sun", "The surface of the sun is about 5,500 degrees Celsius, while its core reaches about 15 million degrees.",
     ["The sun is a star at the centre of the solar system.", "Sunscreen protects the skin from ultraviolet rays."]),
    ("what is the longest river in africa", "The Nile is the longest river in Africa, flowing about 6,650 kilometres to the Mediterranean Sea.",
     ["Africa has more than fifty countries.", "Lake Victoria is the largest lake in Africa."]),
    ("what instrument has 88 keys", "A standard modern piano has 88 keys, 52 white and 36 black.",
     ["Music lessons often start at a young age.", "A guitar usually has six strings."]),
    ("why do cats purr", "Cats purr by vibrating the muscles of the larynx, usually when content but also to soothe themselves when stressed.",
     ["Cats were kept by people in ancient Egypt.", "Domestic cats sleep for many hours a day."]),
    ("how much of the human body is water", "Water makes up about sixty percent of the body weight of an adult human.",
     ["Drinking water is important during hot weather.", "The human body has more than two hundred bones."]),
    ("what is the hardest natural substance", "Diamond is the hardest natural material, made of carbon atoms in a rigid crystal lattice.",
     ["Diamonds are often used in engagement rings.", "Graphite is another form of carbon used in pencils."]),
    ("who developed the theory of relativity", "Albert Einstein developed the special theory of relativity in 1905 and the general theory in 1915.",
     ["Physics studies matter, energy and their interactions.", "Einstein received the Nobel Prize in Physics in 1921 for the photoelectric effect."]),
    ("what is the currency of japan", "The currency of Japan is the yen, issued by the Bank of Japan.",
     ["Tokyo is one of the largest cities in the world.", "Japan is made up of thousands of islands."]),
    ("how do earthquakes happen", "Earthquakes happen when stress builds up along faults in the earth's crust and is suddenly released.",
     ["Some buildings are designed to survive strong shaking.", "Volcanoes are found along the Pacific Ring of Fire."]),
    ("what is the largest desert", "Antarctica is the largest desert on earth; the Sahara is the largest hot desert.",
     ["Camels can go many days without drinking water.", "Sand dunes move slowly with the wind."]),
    ("how many continents are there", "There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America.",
     ["Maps can distort the size of countries near the poles.", "The continents were once joined in a single landmass."]),
    ("what gas do humans breathe out", "When people breathe out they release carbon dioxide produced by their cells.",
     ["The lungs are protected by the rib cage.", "Trees provide shade and homes for wildlife."]),
    ("who wrote romeo and juliet", "Romeo and Juliet is a tragedy written by William Shakespeare around 1595.",
     ["The story is set in the Italian city of Verona.", "Theatres in London staged plays in the afternoon."]),
    ("what is the deepest point in the ocean", "The Challenger Deep in the Mariana Trench is the deepest known point of the ocean, about 10,900 metres down.",
     ["Deep sea fish often produce their own light.", "Submarines can dive far below the surface."]),
    ("how fast can a cheetah run", "A cheetah can sprint at up to about 110 kilometres per hour over short distances.",
     ["Cheetahs live mainly in the savannas of Africa.", "Lions hunt in groups called prides."]),
    ("what is the main language of egypt", "Arabic is the official language of Egypt.",
     ["The pyramids of Giza were built as royal tombs.", "Cairo lies on the banks of the Nile."]),
    ("what does a thermometer measure", "A thermometer measures temperature, how hot or cold something is.",
     ["Weather reports give the forecast for the coming days.", "Mercury was once common in medical instruments."]),
    ("how many bones are in the adult human body", "An adult human skeleton usually has 206 bones.",
     ["Calcium helps keep bones strong.", "Babies are born with more bones, some of which fuse later."]),
    ("what is the capital of japan", "Tokyo is the capital of Japan and its largest city.",
     ["Kyoto was the imperial capital for more than a thousand years.", "Mount Fuji is the highest mountain in Japan."]),
    ("who invented the light bulb", "Thomas Edison developed the first practical long-lasting incandescent light bulb in 1879.",
     ["LED lamps use much less energy than old bulbs.", "Street lights were once lit with gas."]),
    ("what is the largest mammal", "The blue whale is the largest animal known to have lived, reaching about 30 metres long.",
     ["Whales breathe air through a blowhole.", "Elephants are the largest land animals."]),
]
EASY_NEGATIVES = 3
TEST_TOPICS = 12  # the last 12 topics form the test split


def rows(seed: int = 13):
    rng = random.Random(seed)
    for t, (question, answer, related) in enumerate(TOPICS):
        split = "test" if t >= len(TOPICS) - TEST_TOPICS else "train"
        pool = [i for i in range(len(TOPICS)) if i != t]
        others = [TOPICS[i][1] if rng.random() < 0.5 else rng.choice(TOPICS[i][2])
                  for i in rng.sample(pool, EASY_NEGATIVES)]
        candidates = [(answer, 1)] + [(p, 0) for p in related] + [(p, 0) for p in others]
        rng.shuffle(candidates)
        for passage, label in candidates:
            yield split, f"q{t:03d}", question, passage, label


def main() -> None:
    here = Path(__file__).resolve().parent
    for split in ("train", "test"):
        lines = ["qid\tquestion\tpassage\tlabel"]
        lines += [f"{qid}\t{question}\t{passage}\t{label}"
                  for s, qid, question, passage, label in rows() if s == split]
        (here / f"demo_qa_{split}.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
