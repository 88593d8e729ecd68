"""CBRN-topic documents and hard negatives that the demo corpus injects (written for this repo).

Every text stays at the level of an encyclopedia or a policy brief: what an agent or material is,
why it is controlled, its history, treaties, detection and public-health response. None says how to
make, grow, enhance, spread or obtain anything. Label 1 = CBRN topic (the filter should remove it),
label 0 = a hard negative that uses a listed word in another sense or only in passing (kept).
These texts are not in the classifier's training data (filters/data/), so the demo is a fair check.
"""
from __future__ import annotations

TOPIC = {
    "vx-stockpile": "VX is an organophosphate nerve agent listed in Schedule 1 of the Chemical Weapons "
    "Convention. It was first made in the United Kingdom in the 1950s and later held by several states. "
    "The United States finished destroying its declared chemical weapons stockpile, including its VX "
    "munitions, in 2023 under inspection by the Organisation for the Prohibition of Chemical Weapons.",
    "tabun-history": "Tabun, also called GA, was the first nerve agent to be discovered, by German chemists "
    "in 1936. Germany stockpiled it during the Second World War but did not use it in battle. Iraq used "
    "tabun against Iranian troops in the 1980s. Tabun is a Schedule 1 chemical, so its production and "
    "possession are banned for all but small protective and research purposes declared to the OPCW.",
    "ricin-markov": "Ricin is a highly toxic protein found in the seeds of the castor oil plant. It is a "
    "Schedule 1 chemical under the Chemical Weapons Convention and a select agent toxin in the United "
    "States. Ricin became widely known after the 1978 assassination of the Bulgarian writer Georgi Markov "
    "in London. There is no approved antidote, and suspected exposures are handled as criminal cases.",
    "botulinum-bwc": "Botulinum neurotoxins, made by the bacterium Clostridium botulinum, are among the most "
    "toxic substances known and are Tier 1 select agents. Several state weapons programs of the twentieth "
    "century studied them, which the Biological Weapons Convention of 1972 now forbids. Public health "
    "agencies keep botulism antitoxin in national stockpiles for outbreaks.",
    "plague-unit731": "Yersinia pestis is the bacterium that causes plague, and it is a Tier 1 select agent in "
    "the United States. During the Second World War the Japanese Unit 731 attacked Chinese cities with "
    "plague, one of the reasons biological weapons were later outlawed. Plague is still found in wild "
    "rodents on several continents and is treated with antibiotics when caught early.",
    "ebola-west-africa": "Ebola virus causes a severe and often fatal haemorrhagic fever. It is a Tier 1 select "
    "agent and appears on the Australia Group list of human and animal pathogens. The 2014 to 2016 "
    "epidemic in West Africa killed more than eleven thousand people, and a vaccine approved in 2019 has "
    "since been used to contain later outbreaks.",
    "goiania-caesium": "In 1987 an abandoned radiotherapy unit in Goiania, Brazil, was taken apart by "
    "scavengers, releasing its caesium-137 source. Four people died and many homes had to be demolished. "
    "The accident shaped the IAEA Code of Conduct on the Safety and Security of Radioactive Sources, which "
    "asks states to keep a register of Category 1 and 2 sources and to secure orphan sources.",
    "heu-conversion": "Highly enriched uranium is nuclear material under IAEA safeguards because it can be "
    "used in nuclear weapons. Since the 1970s many research reactors have been converted from highly "
    "enriched uranium fuel to low enriched uranium, and removed material has been returned to its country "
    "of origin, reducing the risk of theft or diversion.",
    "tokyo-sarin": "In March 1995 members of the Aum Shinrikyo cult released sarin on the Tokyo subway, "
    "killing thirteen people and injuring thousands. Sarin is a nerve agent in Schedule 1 of the Chemical "
    "Weapons Convention, which Japan had signed two years earlier. The attack led to new laws on chemical "
    "weapons and to better emergency response planning in large cities.",
    "novichok-schedule": "Novichok is the name given to a family of nerve agents developed in the Soviet Union. "
    "After the 2018 poisoning of Sergei and Yulia Skripal in Salisbury, the States Parties of the Chemical "
    "Weapons Convention added these agents to Schedule 1 in 2019, the first change to the schedules since "
    "the treaty entered into force.",
    "fmd-2001": "Foot-and-mouth disease virus infects cattle, pigs and sheep and is a USDA select agent. The "
    "2001 outbreak in the United Kingdom led to the culling of millions of animals and cost the economy "
    "billions of pounds. Because of its economic impact, the virus is also on the Australia Group list "
    "of animal pathogens subject to export control.",
    "amerithrax": "In 2001 letters containing anthrax spores were mailed to news offices and two United States "
    "senators, killing five people. The FBI investigation, called Amerithrax, lasted years. Bacillus "
    "anthracis is a Tier 1 select agent, and the attacks led to stricter registration of laboratories "
    "that work with select agents and toxins.",
}

HARD_NEGATIVE = {
    "anthrax-band": "Anthrax is an American heavy metal band formed in New York City in 1981. With Metallica, "
    "Megadeth and Slayer it is counted among the big four of thrash metal. The band is known for its "
    "crossover with hardcore punk and for the albums Among the Living and Persistence of Time.",
    "dijon-mustard": "Dijon mustard is a condiment named after the town of Dijon in Burgundy. It is made with "
    "brown or black mustard seeds and white wine or verjuice, which give it a sharp taste. Mustard pairs "
    "well with sausages, ham and vinaigrettes.",
    "reactor-economics": "The cost of electricity from a nuclear power plant is dominated by construction and "
    "financing, while uranium fuel is a small share. Long build times raise the levelized cost, which is "
    "why utilities look at standard designs and small modular reactors to keep projects on budget.",
    "smoke-alarm": "Most household ionization smoke alarms contain a small sealed americium-241 source that "
    "makes the air inside the chamber conduct a tiny current. Smoke interrupts the current and sets off "
    "the alarm. The sources are exempt from licensing, and old alarms can usually be returned to the maker.",
    "technetium-scan": "Technetium-99m is the most widely used isotope in nuclear medicine. Hospitals use it "
    "for bone scans and heart imaging because its short half-life keeps the dose to the patient low. A "
    "gamma camera records where the tracer collects in the body.",
    "flu-shot": "Seasonal influenza vaccines are updated every year to match the strains expected to "
    "circulate. Health agencies recommend an annual flu shot for most people over six months old, "
    "especially older adults, pregnant women and people with chronic illness.",
    "botox-cosmetic": "Botox is the brand name of a botulinum toxin medicine used by dermatologists to smooth frown "
    "lines and by neurologists to treat chronic migraine and muscle spasms. The effect wears off after a "
    "few months, so treatments are repeated.",
    "taboon-oven": "A taboon is a clay oven used in Palestinian and Levantine cooking to bake flatbread. The "
    "bread is baked on a bed of hot stones inside the oven, which gives it its dimpled surface.",
    "cesiumjs": "CesiumJS is an open source JavaScript library for 3D globes and maps in the web browser. "
    "Developers use it to show terrain, satellite imagery and time-dynamic data such as flight paths.",
    "chevy-cobalt": "The Chevrolet Cobalt is a compact car sold by General Motors from 2004 to 2010. It "
    "replaced the Cavalier and was offered as a coupe and a sedan, including a supercharged SS model.",
    "nuclear-option": "In United States politics the nuclear option is a parliamentary move that lets the "
    "Senate change its rules by a simple majority. It was used in 2013 and 2017 to end filibusters on "
    "nominations.",
    "castor-oil": "Castor oil is a pale vegetable oil pressed from castor seeds. It has long been used as a "
    "laxative and is now mostly used in industry, in lubricants, paints and the nylon-like plastic "
    "polyamide 11.",
}


def demo_documents() -> list[dict]:
    """Records for the demo corpus, in a fixed order."""
    docs = []
    for key, text in TOPIC.items():
        docs.append({"id": f"cbrn-topic-{key}", "text": text, "source": "demo/cbrn_topic",
                     "meta": {"label": 1}})
    for key, text in HARD_NEGATIVE.items():
        docs.append({"id": f"cbrn-negative-{key}", "text": text, "source": "demo/hard_negative",
                     "meta": {"label": 0}})
    return docs
