"""Evidence beyond the classifier score that a term-matched document is about a listed agent, not merely
mentioning a word it shares with ordinary text. Each piece is something a reviewer can check in the
ledger detail:

- obfuscated: the term matched only after normalisation undid a spelling trick (letters split by spaces
  or dashes, digits for letters, a look-alike letter from another script, a zero-width character).
  Ordinary text has no reason to disguise the name of a listed agent.
- context: words of hazard, incident or regulatory context (weapon, attack, stockpile, select agent,
  export control, ...) within a few words of a matched term; a textbook on radiotherapy names cobalt-60
  too, but not next to "stolen" or "dirty bomb".

Either one sends a document to the lower `threshold_strong`, as two distinct terms do. The classifier
still has to agree: evidence lowers the bar, it never removes a document on its own. Context counts
only around terms that name an agent or source: a category or treaty word ("nuclear weapons", "chemical
weapon", CATEGORY_LISTS) is hazard vocabulary itself, so "treaty" or "arsenal" next to it says nothing
more (a dictionary's "negotiated a nuclear weapons treaty" is not a hazard context).

A document without any term is scored the no-term way only when it uses the vocabulary of the field:
at least `cbrn.no_term_min_domain_words` (1) distinct DOMAIN_WORDS (virus, isotope, poisoning, reactor,
...), read like names are (folded, digits for letters). A paraphrase that describes an agent without
naming it still talks about viruses or isotopes; a kernel struct listing or a continued-fraction
docstring does not, and a bag-of-n-grams score of such text is noise (all six no-term removals of the
shared corpus were of this kind, with no such word). The words found are in the detail.

Generic terms (GENERIC_TERMS: element and source-material names, category words like "chemical agent")
name no particular hazard: dictionaries, chemistry and geology use them all the time. A document whose
only terms are generic escalates only with hazard context; otherwise it goes the no-term way (scored
only when long enough, against the strict no-term threshold). `cbrn.passing_terms` (off by default;
PASSING_TERMS_PRECISION is a measured choice) sends category words named only once the same way.
"""
from __future__ import annotations

import re
import unicodedata

from filters.normalize import exact_view, leet_view

# single words (matched on lowercased word tokens) and two-word phrases; public, non-procedural vocabulary
CONTEXT_WORDS = frozenset("""
weapon weapons weaponized weaponised warfare munition munitions warhead warheads arsenal arsenals stockpile
stockpiles attack attacks attacked attacker terrorist terrorists terrorism bioterrorism bioterror
assassination assassinated poisoning poisoned smuggling smuggled smugglers trafficking seized seizure stolen
theft orphan proliferation nonproliferation disarmament opcw cwc bwc iaea safeguards inspectors inspection
treaty convention sanctions embargo military army soviet wartime biopreparat manhattan
""".split())
CONTEXT_PHRASES = ("select agent", "select agents", "export control", "export controls", "australia group",
                   "dirty bomb", "dirty bombs", "mass destruction", "nerve agent", "nerve agents", "chemical weapons",
                   "biological weapons", "nuclear weapons", "category 1", "category 2", "black market",
                   "weapons program", "weapons programme", "field trials", "dispersal device")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# lexicon lists whose terms name a weapon category, a class of agent or a treaty regime, not an agent
CATEGORY_LISTS = frozenset({"bwc_general", "cwc_general", "npt_general", "regimes"})
# the everyday vocabulary of the four fields (encyclopedia level): a no-term document must use some of it
DOMAIN_WORDS = frozenset("""
virus viruses viral bacteria bacterium bacterial pathogen pathogens pathogenic microbe microbes microbial germ
germs toxin toxins toxic toxicity poison poisons poisonous poisoning poisoned venom infection infections infectious
infected contagious disease diseases epidemic epidemics pandemic outbreak outbreaks vaccine vaccines vaccination
immunization eradication eradicated fever hemorrhagic haemorrhagic spore spores bioweapon bioweapons biological
epidemiology quarantine lethal fatal chemical chemicals nerve gas gases blister pesticide pesticides organophosphate
exposure inhalation vapor vapour radioactive radioactivity radiation radiological radionuclide radionuclides isotope
isotopes nuclear atomic thermonuclear reactor reactors fission fissile enrichment enriched centrifuge centrifuges
fuel bomb bombs warhead warheads detonation fallout contamination contaminated decontamination curie becquerel
sievert irradiated irradiator radiotherapy weapon weapons weaponized weaponised warfare munition munitions stockpile
arsenal attack attacks terrorist terrorism proliferation nonproliferation disarmament safeguards iaea opcw bwc cwc
uranium plutonium thorium radium polonium cesium caesium cobalt americium strontium iridium anthrax smallpox plague
ebola nipah hantavirus cholera botulism botulinum ricin sarin soman tabun chlorine phosgene cyanide mustard
""".split())
_LETTERS = re.compile(r"[a-z]+")
_DOMAIN_LEET = {leet_view(w): w for w in DOMAIN_WORDS}   # leet_view also folds "l" to "i"
OBFUSCATED_KINDS = ("split", "leet", "folded")
GENERIC_TERMS = ("Uranium", "Natural uranium", "Thorium", "Tritium", "Source material", "chemical agent",
                 "biological agent")
# Named once, with no other term and no hazard context, these are often a mention in passing (a
# dictionary's "protected against nuclear weapons", a joke, an element "made from plutonium"). Off by
# default (cbrn.passing_terms = []): routed the no-term way they also lose topic text whose classifier
# score is as high, because the no-term threshold must keep the corpus budget. Measured with this list
# (python bench/cbrn.py; filters.cbrn evaluate on the dev split; before the hand-labeled corpus negatives
# of filters/data/corpus_labels.tsv): corpus removals 208 -> 138, dev recall
# 0.978 -> 0.944. For operators who prefer fewer removals of ordinary text to recall.
PASSING_TERMS_PRECISION = ("Nuclear weapon", "chemical weapon", "biological weapon", "weapons of mass destruction",
                           "nuclear test", "Plutonium")


def _disguised(span: str) -> bool:
    """A letter from another script inside a Latin word, or an invisible character: not an accent (a
    dictionary's pronunciation marks and names in other languages fold too, and disguise nothing)."""
    latin = non_latin = False
    for ch in span:
        if unicodedata.category(ch) == "Cf":
            return True
        if ch.isalpha():
            if unicodedata.name(ch, "").startswith("LATIN") or ch.isascii():
                latin = True
            else:
                non_latin = True
    return latin and non_latin


def obfuscated_matches(text: str, matches) -> list[dict]:
    """Matches found only through a normalisation view: [{"term", "kind", "form"}], one per term and kind.
    `form` is the matched span as written (a name, at most 40 characters). Folded matches count only
    when the fold undid a disguise (_disguised), not an accent."""
    out, seen = [], set()
    for m in matches:
        if m.kind == "folded" and not _disguised(text[m.start:m.end]):
            continue
        if m.kind in OBFUSCATED_KINDS and (m.entry, m.kind) not in seen:
            seen.add((m.entry, m.kind))
            out.append({"term": m.term, "kind": m.kind, "form": text[m.start:m.end][:40]})
    return out


def domain_words(text: str) -> list[str]:
    """Distinct DOMAIN_WORDS in the text, sorted: read in the folded view (case, look-alike letters) and
    in the digit-folded one ("r3actor"), as the lexicon matcher reads names."""
    folded = exact_view(text)
    found = set(DOMAIN_WORDS.intersection(_LETTERS.findall(folded)))
    found.update(_DOMAIN_LEET[w] for w in _LETTERS.findall(leet_view(folded)) if w in _DOMAIN_LEET)
    return sorted(found)


def context_cues(text: str, matches, half_words: int) -> list[str]:
    """Distinct context words and phrases within `half_words` words of any matched term, sorted."""
    found: set[str] = set()
    for m in matches:
        left = text[max(0, m.start - 12 * half_words):m.start].lower()
        right = text[m.end:m.end + 12 * half_words].lower()
        words = _WORD.findall(left)[-half_words:] + ["|"] + _WORD.findall(right)[:half_words]
        found.update(w for w in words if w in CONTEXT_WORDS)
        joined = " ".join(words)
        found.update(p for p in CONTEXT_PHRASES if p in joined)
    return sorted(found)
