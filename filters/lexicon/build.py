"""Build filters/lexicon/cbrn_lexicon.json from tables.py: `python -m filters.lexicon.build`.

Adds the generated isotope spellings (Cs-137, Cs137, 137Cs, caesium 137, cesium-137, ...), marks
aliases of two characters or fewer as context-only, checks every CAS check digit, refuses an
alias that would point at two entries, and writes deterministic JSON (sorted keys, fixed order).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from common.io import atomic_write_bytes, json_bytes
from filters.lexicon import tables
from filters.normalize import leet_view, normalize_term

VERSION = "1.0.0"
OUT = Path(__file__).with_name("cbrn_lexicon.json")

# Category cue words: a context-only alias counts only with one of these within the window.
CUES = {
    "biological": ["agent", "agents", "bacteria", "bacterium", "bacterial", "spore", "spores", "infection", "infections",
                   "infected", "disease", "outbreak", "outbreaks", "pathogen", "pathogens", "vaccine", "vaccination",
                   "toxin", "toxins", "bioterrorism", "biological", "weapon", "weapons", "epidemic", "pandemic",
                   "virus", "viral", "strain", "strains", "livestock", "cattle", "zoonotic", "select", "bacillus",
                   "letters", "attack", "attacks", "lethal", "symptoms", "patients", "cases", "fever"],
    "chemical": ["agent", "agents", "nerve", "gas", "gases", "chemical", "chemicals", "weapon", "weapons", "warfare",
                 "munition", "munitions", "shell", "shells", "stockpile", "stockpiles", "opcw", "cwc", "schedule",
                 "blister", "vesicant", "attack", "attacks", "toxic", "exposure", "precursor",
                 "precursors", "convention", "lethal", "poisoning"],
    "radiological": ["radioactive", "radiological", "radiation", "radionuclide", "radionuclides", "sealed", "source",
                     "sources", "isotope", "isotopes", "iaea", "dispersal", "device", "devices", "bomb", "curie",
                     "becquerel", "contamination", "activity"],
    "nuclear": ["uranium", "plutonium", "enriched", "enrichment", "fissile", "nuclear", "reactor", "reactors", "fuel",
                "weapon", "weapons", "warhead", "warheads", "centrifuge", "centrifuges", "safeguards", "iaea",
                "isotope", "isotopes", "material", "materials", "bomb", "bombs", "fission", "radioactive"],
}

# Phrases that contain a term but are not it; a hit inside one of these is dropped.
STOP_PHRASES = ["SARS-CoV-2", "SARS CoV 2", "SARSCoV2", "SARS-CoV2", "SARS-CoV/SARS-CoV-2"]

# AG precursors and Schedule 3B chemicals with large everyday industrial or consumer use: they are
# matched and reported, but do not count toward escalation on their own.
DUAL_USE_COMMON = {
    "Sodium fluoride", "Potassium fluoride", "Hydrogen fluoride", "Sodium cyanide", "Potassium cyanide", "Sodium sulfide",
    "Triethanolamine", "Triethanolamine hydrochloride", "Diethylamine", "Dimethylamine", "Dimethylamine hydrochloride",
    "Di-isopropylamine", "Diethylaminoethanol", "2-Chloroethanol", "Ammonium bifluoride", "Sodium bifluoride",
    "Potassium bifluoride", "Sodium hexafluorosilicate", "Thionyl chloride", "Phosphorus trichloride",
    "Phosphorus oxychloride", "Phosphorus pentachloride", "Phosphorus pentasulfide", "Trimethyl phosphite",
    "Triethyl phosphite", "Dimethyl phosphite", "Diethyl phosphite", "Triisopropyl phosphite", "Sulfur monochloride",
    "Sulfur dichloride", "Methyldiethanolamine", "Ethyldiethanolamine", "Pinacolone", "Benzilic acid",
    "Methyl benzilate", "Dimethyl methylphosphonate", "O,O-Diethyl phosphorothioate", "O,O-Diethyl phosphorodithioate",
}

ALT_ELEMENT_SPELLING = {"Caesium": ["Cesium"], "Aluminium": ["Aluminum"]}

# What changed against ../shared/data/cbrn_lexicon.json (the starting reference), for reviewers.
CHANGES = [
    "one entry per listed thing: rows for the same agent on FSAP, Australia Group and CWC merged (ricin, saxitoxin, "
    "abrin, botulinum toxins, ...), each membership kept with the name used on that list",
    "'Nuclear weapon' moved from the IAEA Statute nuclear-material terms to NPT general terms",
    "alias 'uranium enriched to 20% U-235 or more' removed: a definition with a threshold, not a name",
    "'epsilon toxin' and 'coccidioidomycosis'/'valley fever' no longer point at two entries",
    "ambiguous aliases marked context-only: single letters (H, T, L, Q, U), codes (GA, GB, GD, GF, VX, HD, AC, CG, CK, "
    "PS, DF, BZ, QL, VG, CW, DU, Pu, TDG, TEA, MDEA, DAS, SEB, STX, TTX, NiV, HeV, MARV, FMD, LEU, SNM, MOX, RDD, RED, "
    "HASS, UOC, hex; matched case-sensitively), everyday words (anthrax, plague, mustard, tabun, source material, orphan source)",
    "'Clostridium butyricum' no longer an alias: the species is a common probiotic, only toxin-producing strains are listed",
    "'trichothecene mycotoxin' removed as a T-2 alias: the family includes unlisted toxins (e.g. deoxynivalenol)",
    "added: cyclosarin CAS, Novichok names, nerve/blister/choking/incapacitating agent plurals, BWC and NPT general terms, "
    "AG plant pathogens (marked verify), isotope spellings generated for every radionuclide",
    "alias RED of 'radiological exposure device' dropped: the colour word made it useless even with cues",
    "added general terms: treaty and programme names (CWC/OPCW, BWC, NPT, CTBT, Australia Group, select agent "
    "program), biological/chemical agent, sealed/disused radioactive source, nuclear test(ing), nuclear arsenal",
    "stop phrase SARS-CoV-2 so COVID-19 text does not match the listed SARS-CoV",
    "every CAS number checked by its check digit",
]


def cas_ok(cas: str) -> bool:
    m = re.fullmatch(r"(\d{2,7})-(\d{2})-(\d)", cas)
    if not m:
        return False
    digits = (m.group(1) + m.group(2))[::-1]
    return sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10 == int(m.group(3))


def isotope_aliases(iso: dict) -> list[str]:
    names = [iso["element"]] + ALT_ELEMENT_SPELLING.get(iso["element"], [])
    sym, a = iso["symbol"], iso["mass"]
    out = []
    for n in names:
        out += [f"{n}-{a}", f"{n}{a}"]
    # "{A} {symbol}" with a space is left out on purpose: "60 co-workers" is not cobalt-60
    out += [f"{sym}-{a}", f"{sym}{a}", f"{a}{sym}", f"{a}-{sym}"]
    return out


def build_entries() -> list[dict]:
    entries, owner = [], {}
    for row in tables.ROWS:
        term = row["term"]
        aliases = [term] + list(row["aliases"])
        if row.get("isotope"):
            aliases += isotope_aliases(row["isotope"])
        ctx = list(row["context_aliases"])
        ctx_norm = {normalize_term(a) for a in ctx}  # a context-only spelling overrides the same strong one
        strong, seen = [], set()
        for a in aliases:
            norm = normalize_term(a)
            if not norm or norm in seen:
                continue
            seen.add(norm)
            (ctx if norm in ctx_norm or sum(ch.isalnum() for ch in norm) <= 2 else strong).append(a)
        ctx_final, seen = [], set()
        for a in ctx:
            norm = normalize_term(a)
            if norm and norm not in seen:
                seen.add(norm)
                ctx_final.append(a)
        for a in strong + ctx_final:
            key = leet_view(normalize_term(a)).replace(" ", "")
            if key in owner and owner[key] != term:
                raise SystemExit(f"alias {a!r} of {term!r} collides with an alias of {owner[key]!r}")
            owner[key] = term
        if row["cas"] and not cas_ok(row["cas"]):
            raise SystemExit(f"{term}: CAS {row['cas']} fails its check digit")
        tiers = [m["tier"] or "" for m in row["lists"]]
        entries.append({
            "term": term,
            "category": row["category"],
            "lists": row["lists"],
            "aliases": strong,
            "context_aliases": ctx_final,
            "cas": row["cas"],
            "tier1": any(t == "Tier 1" for t in tiers),
            "schedule1": any(t.startswith("Schedule 1") for t in tiers),
            "dual_use_common": term in DUAL_USE_COMMON,
            "verify": bool(row["verify"]),
            "note": row["note"],
        })
    terms = [e["term"] for e in entries]
    dup = {t for t in terms if terms.count(t) > 1}
    if dup:
        raise SystemExit(f"duplicate terms: {sorted(dup)}")
    unknown = DUAL_USE_COMMON - set(terms)
    if unknown:
        raise SystemExit(f"DUAL_USE_COMMON names no entry: {sorted(unknown)}")
    return entries


def build() -> dict:
    entries = build_entries()
    counts = {c: sum(e["category"] == c for e in entries) for c in ("chemical", "biological", "radiological", "nuclear")}
    return {
        "version": VERSION,
        "description": "CBRN lexicon for topic filtering: names, aliases, CAS numbers and public-list membership ONLY "
                       "(no properties, quantities or procedures). Built by filters/lexicon/build.py from tables.py.",
        "compiled_from": "the compiler's knowledge of the public lists below, checked against the shared starting "
                         "reference; entries with verify=true may have changed in a periodic review",
        "lists": tables.LISTS,
        "counts": counts,
        "n_entries": len(entries),
        "cues": CUES,
        "stop_phrases": STOP_PHRASES,
        "changes_from_reference": CHANGES,
        "entries": entries,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--check", action="store_true", help="fail if the file on disk differs from a fresh build")
    args = ap.parse_args(argv)
    data = json_bytes(build(), indent=True)
    if args.check:
        current = Path(args.out).read_bytes() if Path(args.out).exists() else b""
        if current != data:
            print(f"{args.out} is stale: run python -m filters.lexicon.build", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    atomic_write_bytes(args.out, data)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
