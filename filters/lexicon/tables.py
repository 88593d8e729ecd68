"""Curated CBRN lexicon tables: NAMES, aliases, CAS numbers and list membership ONLY.

Compiled from the public lists named below, checked against `../shared/data/cbrn_lexicon.json`
(the starting reference) and corrected; see CHANGES in build.py. One row is one listed thing:
an agent listed on several lists (ricin: FSAP, Australia Group, CWC 1A.8) is one entry with
several memberships, so "distinct terms" counts things, not list rows.

`aliases` match on their own. `ctx` aliases are short or everyday words (codes like "GB", "U",
"Anthrax" the band, "mustard", "tabun" the bread oven) and count only next to a CBRN cue word.
Lists change in periodic reviews; rows marked verify=True were flagged as possibly changed.
"""
from __future__ import annotations

# ------------------------------------------------------------------ list identifiers
FSAP_HHS = "FSAP 42 CFR 73.3 (HHS select agents and toxins)"
FSAP_OVL = "FSAP 42 CFR 73.4 / 9 CFR 121.4 (overlap select agents)"
FSAP_USDA = "FSAP 9 CFR 121.3 (USDA animal select agents)"
FSAP_PPQ = "FSAP 7 CFR 331.3 (USDA plant select agents)"
AG_BIO = "Australia Group: List of Human and Animal Pathogens and Toxins for Export Control"
AG_PLANT = "Australia Group: List of Plant Pathogens for Export Control"
AG_CHEM = "Australia Group: Export Control List - Chemical Weapons Precursors"
CWC = "Chemical Weapons Convention: Annex on Chemicals (Schedules 1-3)"
CWC_GEN = "Chemical Weapons Convention: general terms (Art. II definitions, OPCW usage)"
BWC_GEN = "Biological and Toxin Weapons Convention: general terms (Art. I)"
IAEA_COC = "IAEA Code of Conduct on the Safety and Security of Radioactive Sources: Annex I (Category 1-3)"
IAEA_D = "IAEA EPR-D-VALUES 2006 (dangerous quantities): further radionuclides"
IAEA_NSS = "IAEA Nuclear Security Series: general terms"
IAEA_NM = "IAEA Statute Art. XX / INFCIRC/225: nuclear material terms"
NPT_GEN = "Treaty on the Non-Proliferation of Nuclear Weapons: general terms"
REGIMES = "Arms-control and export-control regimes: treaty, organisation and programme names"

LISTS = {
    "fsap_hhs": FSAP_HHS, "fsap_overlap": FSAP_OVL, "fsap_usda": FSAP_USDA, "fsap_ppq": FSAP_PPQ,
    "ag_bio": AG_BIO, "ag_plant": AG_PLANT, "ag_chem": AG_CHEM, "cwc": CWC, "cwc_general": CWC_GEN,
    "bwc_general": BWC_GEN, "iaea_coc": IAEA_COC, "iaea_dvalues": IAEA_D, "iaea_nss": IAEA_NSS,
    "iaea_nm": IAEA_NM, "npt_general": NPT_GEN, "regimes": REGIMES,
}
_ID = {v: k for k, v in LISTS.items()}

B, C, R, N = "biological", "chemical", "radiological", "nuclear"
ROWS: list[dict] = []


def E(term, category, lists, aliases=(), ctx=(), cas=None, note=None, verify=False):
    """lists: [(list, name on that list or None = term, tier or None)]."""
    ROWS.append({
        "term": term, "category": category,
        "lists": [{"list": _ID[lst], "name": name or term, "tier": tier} for lst, name, tier in lists],
        "aliases": list(aliases), "context_aliases": list(ctx), "cas": cas, "note": note, "verify": verify,
    })


T1, SA, PL = "Tier 1", "select agent", "select agent (plant)"

# ------------------------------------------------------------------ biological: FSAP (+ AG where also listed)
E("Abrin", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins")], ["abrin toxin"])
E("Bacillus cereus biovar anthracis", B, [(FSAP_HHS, "Bacillus cereus Biovar anthracis", T1)],
  ["B. cereus biovar anthracis"])
E("Botulinum neurotoxins", B, [(FSAP_HHS, None, T1), (AG_BIO, "Botulinum toxins", "toxins")],
  ["botulinum toxin", "botulinum toxins", "botulinum neurotoxin", "botulism toxin", "BoNT", "BoNTs"],
  note="medical and cosmetic products (e.g. onabotulinumtoxinA) are excluded from the FSAP list; the brand names are not aliases")
E("Clostridium botulinum", B, [(FSAP_HHS, "Botulinum neurotoxin producing species of Clostridium", T1),
                              (AG_BIO, "Clostridium botulinum", "bacteria")],
  ["C. botulinum", "botulism"])
E("Clostridium argentinense (neurotoxin producing strains)", B,
  [(AG_BIO, "Clostridium argentinense, botulinum neurotoxin producing strains", "bacteria")],
  ["Clostridium argentinense", "C. argentinense"])
E("Clostridium baratii (neurotoxin producing strains)", B,
  [(AG_BIO, "Clostridium baratii, botulinum neurotoxin producing strains", "bacteria")], ["Clostridium baratii"])
E("Clostridium butyricum (neurotoxin producing strains)", B,
  [(AG_BIO, "Clostridium butyricum, botulinum neurotoxin producing strains", "bacteria")], [],
  note="Clostridium butyricum itself is a common probiotic; only neurotoxin producing strains are listed, so the bare species name is not an alias")
E("Conotoxins", B, [(FSAP_HHS, "Conotoxins (short, paralytic alpha conotoxins)", SA), (AG_BIO, "Conotoxins", "toxins")],
  ["conotoxin", "alpha-conotoxin", "alpha conotoxins"])
E("Coxiella burnetii", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "bacteria")], ["C. burnetii", "Q fever"])
E("Crimean-Congo hemorrhagic fever virus", B, [(FSAP_HHS, "Crimean-Congo haemorrhagic fever virus", SA), (AG_BIO, None, "viruses")],
  ["Crimean-Congo haemorrhagic fever virus", "Crimean-Congo hemorrhagic fever", "Crimean-Congo haemorrhagic fever",
   "CCHF virus", "CCHFV", "CCHF"])
E("Diacetoxyscirpenol", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins")], ["anguidine"], ctx=["DAS"])
E("Eastern equine encephalitis virus", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "viruses")],
  ["EEEV", "EEE virus", "eastern equine encephalitis"])
E("Ebolavirus", B, [(FSAP_HHS, "Ebolavirus", T1), (AG_BIO, "Ebolavirus (all members of the genus)", "viruses")],
  ["Ebola virus", "Ebola", "EBOV", "Ebola hemorrhagic fever", "Ebola haemorrhagic fever", "Ebola virus disease",
   "Zaire ebolavirus", "Sudan ebolavirus"])
E("Francisella tularensis", B, [(FSAP_HHS, None, T1), (AG_BIO, None, "bacteria")],
  ["F. tularensis", "tularemia", "tularaemia", "rabbit fever"])
E("Lassa virus", B, [(FSAP_HHS, "Lassa fever virus", SA), (AG_BIO, None, "viruses")],
  ["Lassa fever virus", "Lassa fever", "LASV"])
E("Lujo virus", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "viruses")], ["LUJV"])
E("Marburg virus", B, [(FSAP_HHS, None, T1), (AG_BIO, "Marburgvirus (all members of the genus)", "viruses")],
  ["Marburgvirus", "Marburg hemorrhagic fever", "Marburg haemorrhagic fever", "Marburg virus disease"], ctx=["MARV"])
E("Monkeypox virus", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "viruses")], ["mpox virus", "MPXV", "mpox", "monkeypox"],
  verify=True, note="FSAP membership of monkeypox (clade I / II) changed in recent biennial reviews; verify")
E("Reconstructed 1918 influenza virus", B,
  [(FSAP_HHS, "Reconstructed replication competent forms of the 1918 pandemic influenza virus", SA),
   (AG_BIO, "Reconstructed 1918 influenza virus", "viruses")],
  ["1918 influenza virus", "reconstructed 1918 flu", "1918 pandemic influenza virus"])
E("Ricin", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins"), (CWC, None, "Schedule 1A.8")],
  ["ricin toxin", "RCA60"], cas="9009-86-3")
E("Rickettsia prowazekii", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "bacteria")], ["R. prowazekii", "epidemic typhus"])
E("SARS-associated coronavirus", B,
  [(FSAP_HHS, "SARS-associated coronavirus (SARS-CoV)", SA),
   (AG_BIO, "Severe acute respiratory syndrome-related coronavirus (SARS-related coronavirus)", "viruses")],
  ["SARS-CoV", "SARS coronavirus", "SARS-CoV-1", "SARS-related coronavirus"],
  note="SARS-CoV-2 is not the listed agent; 'SARS-CoV-2' is a stop phrase so COVID-19 text does not match SARS-CoV")
E("SARS-CoV/SARS-CoV-2 chimeric viruses", B, [(FSAP_HHS, None, SA)], ["SARS-CoV/SARS-CoV-2 chimera"], verify=True,
  note="added in a recent FSAP biennial review; verify")
E("Saxitoxin", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins"), (CWC, None, "Schedule 1A.7")],
  ["paralytic shellfish toxin"], ctx=["STX"], cas="35523-89-8")
E("Chapare virus", B, [(FSAP_HHS, "South American haemorrhagic fever virus: Chapare", SA), (AG_BIO, None, "viruses")])
E("Guanarito virus", B, [(FSAP_HHS, "South American haemorrhagic fever virus: Guanarito", SA), (AG_BIO, None, "viruses")],
  ["Venezuelan hemorrhagic fever", "Venezuelan haemorrhagic fever"])
E("Junin virus", B, [(FSAP_HHS, "South American haemorrhagic fever virus: Junin", SA), (AG_BIO, None, "viruses")],
  ["Argentine hemorrhagic fever", "Argentine haemorrhagic fever"])
E("Machupo virus", B, [(FSAP_HHS, "South American haemorrhagic fever virus: Machupo", SA), (AG_BIO, None, "viruses")],
  ["Bolivian hemorrhagic fever", "Bolivian haemorrhagic fever"])
E("Sabia virus", B, [(FSAP_HHS, "South American haemorrhagic fever virus: Sabia", SA), (AG_BIO, None, "viruses")],
  ["Brazilian hemorrhagic fever", "Brazilian haemorrhagic fever"])
E("Staphylococcal enterotoxins", B,
  [(FSAP_HHS, "Staphylococcal enterotoxins (subtypes A-E)", SA),
   (AG_BIO, "Staphylococcus aureus enterotoxins, hemolysin alpha toxin, and toxic shock syndrome toxin", "toxins")],
  ["staphylococcal enterotoxin", "staphylococcal enterotoxin B", "Staphylococcus aureus enterotoxin", "TSST-1",
   "toxic shock syndrome toxin"], ctx=["SEB"])
E("T-2 toxin", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins")], ["T2 toxin", "T-2 mycotoxin"])
E("HT-2 toxin", B, [(AG_BIO, None, "toxins")], ["HT2 toxin"])
E("Tetrodotoxin", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "toxins")], [], ctx=["TTX"])
E("Tick-borne encephalitis virus (Far Eastern subtype)", B,
  [(FSAP_HHS, "Tick-borne encephalitis complex (flavi) viruses: Far Eastern subtype", SA), (AG_BIO, None, "viruses")],
  ["Russian spring-summer encephalitis", "Russian spring summer encephalitis virus"])
E("Tick-borne encephalitis virus (Siberian subtype)", B,
  [(FSAP_HHS, "Tick-borne encephalitis complex (flavi) viruses: Siberian subtype", SA)], [])
E("Kyasanur Forest disease virus", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "viruses")],
  ["Kyasanur Forest disease", "KFDV", "monkey fever"])
E("Omsk hemorrhagic fever virus", B, [(FSAP_HHS, None, SA), (AG_BIO, None, "viruses")],
  ["Omsk haemorrhagic fever", "Omsk hemorrhagic fever", "OHFV"])
E("Variola major virus", B, [(FSAP_HHS, None, T1), (AG_BIO, "Variola virus", "viruses")],
  ["variola virus", "variola major", "smallpox virus", "smallpox"])
E("Variola minor virus", B, [(FSAP_HHS, "Variola minor virus (Alastrim)", T1)], ["variola minor", "alastrim"])
E("Yersinia pestis", B, [(FSAP_HHS, None, T1), (AG_BIO, None, "bacteria")],
  ["Y. pestis", "bubonic plague", "pneumonic plague", "septicemic plague"], ctx=["plague"])
E("Bacillus anthracis", B, [(FSAP_OVL, None, T1), (AG_BIO, None, "bacteria")],
  ["B. anthracis", "anthrax spores", "anthrax toxin", "inhalation anthrax", "cutaneous anthrax"], ctx=["anthrax"])
E("Bacillus anthracis Pasteur strain", B, [(FSAP_OVL, None, SA)], ["anthrax Pasteur strain"])
E("Brucella abortus", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "bacteria")], ["B. abortus", "Bang's disease"],
  verify=True, note="Brucella species were proposed for removal from FSAP in a recent biennial review; verify")
E("Brucella melitensis", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "bacteria")], ["B. melitensis", "Malta fever"], verify=True)
E("Brucella suis", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "bacteria")], ["B. suis"], verify=True)
E("Brucellosis", B, [(FSAP_OVL, "Brucella abortus, B. melitensis, B. suis (disease name)", SA)],
  ["undulant fever"], note="disease caused by the listed Brucella species")
E("Burkholderia mallei", B, [(FSAP_OVL, None, T1), (AG_BIO, None, "bacteria")],
  ["B. mallei", "Pseudomonas mallei", "glanders"])
E("Burkholderia pseudomallei", B, [(FSAP_OVL, None, T1), (AG_BIO, None, "bacteria")],
  ["B. pseudomallei", "Pseudomonas pseudomallei", "melioidosis", "Whitmore's disease"])
E("Hendra virus", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "viruses")], [], ctx=["HeV"])
E("Nipah virus", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "viruses")], ["Nipah virus infection"], ctx=["NiV"])
E("Rift Valley fever virus", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "viruses")], ["RVFV", "Rift Valley fever"])
E("Venezuelan equine encephalitis virus", B, [(FSAP_OVL, None, SA), (AG_BIO, None, "viruses")],
  ["VEEV", "VEE virus", "Venezuelan equine encephalitis"])
# USDA animal
E("African horse sickness virus", B, [(FSAP_USDA, None, SA), (AG_BIO, None, "viruses")], ["African horse sickness", "AHSV"])
E("African swine fever virus", B, [(FSAP_USDA, None, SA), (AG_BIO, None, "viruses")], ["African swine fever", "ASFV"])
E("Avian influenza virus (highly pathogenic)", B, [(FSAP_USDA, None, SA), (AG_BIO, None, "viruses")],
  ["highly pathogenic avian influenza", "HPAI", "HPAI H5N1"])
E("Classical swine fever virus", B, [(FSAP_USDA, None, SA), (AG_BIO, None, "viruses")],
  ["classical swine fever", "hog cholera", "CSFV"])
E("Foot-and-mouth disease virus", B, [(FSAP_USDA, None, T1), (AG_BIO, None, "viruses")],
  ["foot-and-mouth disease", "foot and mouth disease", "FMDV"], ctx=["FMD"])
E("Goat pox virus", B, [(FSAP_USDA, None, SA), (AG_BIO, "Goatpox virus", "viruses")], ["goatpox virus", "goatpox", "goat pox"])
E("Lumpy skin disease virus", B, [(FSAP_USDA, None, SA), (AG_BIO, None, "viruses")], ["lumpy skin disease", "LSDV"])
E("Mycoplasma capricolum subsp. capripneumoniae", B,
  [(FSAP_USDA, "Mycoplasma capricolum subspecies capripneumoniae", SA), (AG_BIO, None, "bacteria")],
  ["contagious caprine pleuropneumonia", "CCPP"])
E("Mycoplasma mycoides subsp. mycoides SC", B,
  [(FSAP_USDA, "Mycoplasma mycoides subspecies mycoides small colony", SA), (AG_BIO, None, "bacteria")],
  ["contagious bovine pleuropneumonia", "CBPP"])
E("Newcastle disease virus (virulent)", B, [(FSAP_USDA, None, SA), (AG_BIO, "Newcastle disease virus", "viruses")],
  ["virulent Newcastle disease", "virulent Newcastle disease virus", "vNDV", "Newcastle disease"])
E("Peste des petits ruminants virus", B, [(FSAP_USDA, None, SA), (AG_BIO, "Peste-des-petits-ruminants virus", "viruses")],
  ["peste des petits ruminants", "PPRV"])
E("Rinderpest virus", B, [(FSAP_USDA, None, T1), (AG_BIO, None, "viruses")], ["rinderpest", "cattle plague"])
E("Sheep pox virus", B, [(FSAP_USDA, None, SA), (AG_BIO, "Sheeppox virus", "viruses")], ["sheeppox virus", "sheeppox", "sheep pox"])
# USDA plant (FSAP) and Australia Group plant pathogens
E("Coniothyrium glycines", B, [(FSAP_PPQ, None, PL), (AG_PLANT, None, "fungi")],
  ["Phoma glycinicola", "Pyrenochaeta glycines", "red leaf blotch of soybean"])
E("Peronosclerospora philippinensis", B, [(FSAP_PPQ, None, PL), (AG_PLANT, None, "oomycetes")],
  ["Peronosclerospora sacchari", "Philippine downy mildew"], verify=True)
E("Ralstonia solanacearum race 3 biovar 2", B, [(FSAP_PPQ, None, PL), (AG_PLANT, "Ralstonia solanacearum, race 3, biovar 2", "bacteria")],
  ["Ralstonia solanacearum"], verify=True)
E("Rathayibacter toxicus", B, [(FSAP_PPQ, None, PL)], ["annual ryegrass toxicity"])
E("Sclerophthora rayssiae", B, [(FSAP_PPQ, "Sclerophthora rayssiae", PL), (AG_PLANT, "Sclerophthora rayssiae var. zeae", "oomycetes")],
  ["brown stripe downy mildew"], verify=True)
E("Synchytrium endobioticum", B, [(FSAP_PPQ, None, PL), (AG_PLANT, None, "fungi")], ["potato wart disease"])
E("Xanthomonas oryzae", B, [(FSAP_PPQ, None, PL), (AG_PLANT, "Xanthomonas oryzae pv. oryzae", "bacteria")],
  ["bacterial leaf blight of rice"])
E("Puccinia graminis f. sp. tritici", B, [(AG_PLANT, "Puccinia graminis ssp. graminis var. graminis / var. stakmanii", "fungi")],
  ["wheat stem rust", "Ug99"], verify=True)
E("Puccinia striiformis", B, [(AG_PLANT, None, "fungi")], ["wheat stripe rust"], verify=True)
E("Magnaporthe oryzae", B, [(AG_PLANT, None, "fungi")], ["Pyricularia oryzae", "rice blast fungus"], verify=True)
# Australia Group only (viruses, bacteria, toxins, fungi)
for _v, _al in [
    ("Andes virus", []), ("Bluetongue virus", ["bluetongue"]), ("Chikungunya virus", []), ("Choclo virus", []),
    ("Dobrava-Belgrade virus", ["Dobrava virus"]), ("Hantaan virus", []), ("Japanese encephalitis virus", []),
    ("Laguna Negra virus", []), ("Louping ill virus", []), ("Lymphocytic choriomeningitis virus", ["LCMV"]),
    ("Murray Valley encephalitis virus", []), ("Oropouche virus", []), ("Porcine Teschovirus", ["porcine teschovirus"]),
    ("Powassan virus", []), ("Rocio virus", []), ("Seoul virus", []), ("Sin Nombre virus", []),
    ("St. Louis encephalitis virus", ["Saint Louis encephalitis virus"]), ("Swine vesicular disease virus", []),
    ("Vesicular stomatitis virus", []), ("Western equine encephalitis virus", ["WEEV"]), ("Yellow fever virus", []),
]:
    E(_v, B, [(AG_BIO, None, "viruses")], _al)
E("Rabies virus and other lyssaviruses", B, [(AG_BIO, "Rabies virus and other members of the genus Lyssavirus", "viruses")],
  ["rabies virus", "lyssavirus"])
E("Suid herpesvirus 1", B, [(AG_BIO, "Suid herpesvirus 1 (pseudorabies virus, Aujeszky's disease)", "viruses")],
  ["pseudorabies virus", "Aujeszky's disease"])
E("Chlamydia psittaci", B, [(AG_BIO, None, "bacteria")], ["Chlamydophila psittaci", "psittacosis", "parrot fever"])
E("Clostridium perfringens (epsilon toxin producing types)", B,
  [(AG_BIO, "Clostridium perfringens, epsilon toxin producing types", "bacteria")], [])
E("Clostridium perfringens toxins", B,
  [(AG_BIO, "Clostridium perfringens alpha, beta 1, beta 2, epsilon and iota toxins", "toxins")],
  ["epsilon toxin", "Clostridium perfringens epsilon toxin"])
E("Salmonella Typhi", B, [(AG_BIO, "Salmonella enterica subspecies enterica serovar Typhi", "bacteria")],
  ["Salmonella enterica serovar Typhi", "S. Typhi", "typhoid fever"])
E("Shiga toxin producing Escherichia coli", B,
  [(AG_BIO, "Shiga toxin producing Escherichia coli (STEC) of serogroups O26, O45, O103, O104, O111, O121, O145, O157", "bacteria")],
  ["STEC", "EHEC", "E. coli O157:H7", "enterohaemorrhagic E. coli", "enterohemorrhagic E. coli"])
E("Shigella dysenteriae", B, [(AG_BIO, None, "bacteria")], ["S. dysenteriae", "dysentery bacillus"])
E("Vibrio cholerae", B, [(AG_BIO, None, "bacteria")], ["V. cholerae", "cholera"])
E("Cholera toxin", B, [(AG_BIO, None, "toxins")], [])
E("Shiga toxins", B, [(AG_BIO, None, "toxins")], ["Shiga toxin", "shiga-like toxins", "verotoxins", "verocytotoxins"])
E("Microcystins", B, [(AG_BIO, None, "toxins")], ["microcystin", "cyanginosins"])
E("Aflatoxins", B, [(AG_BIO, None, "toxins")], ["aflatoxin"])
E("Modeccin", B, [(AG_BIO, None, "toxins")])
E("Volkensin", B, [(AG_BIO, None, "toxins")])
E("Viscumin", B, [(AG_BIO, None, "toxins")], ["Viscum album lectin 1"])
E("Coccidioides immitis", B, [(AG_BIO, None, "fungi")], ["C. immitis", "coccidioidomycosis", "valley fever"])
E("Coccidioides posadasii", B, [(AG_BIO, None, "fungi")], ["C. posadasii"])
# BWC general terms (the treaty's own vocabulary; not a list of agents)
E("biological weapon", B, [(BWC_GEN, None, "general term")],
  ["biological weapons", "bioweapon", "bioweapons", "biological warfare", "germ warfare", "bioterrorism",
   "bioterrorist", "biological warfare agent", "biological warfare agents", "toxin weapons"])

E("biological agent", B, [(BWC_GEN, "microbial or other biological agents, or toxins", "general term")],
  ["biological agents", "biological threat agents", "biothreat agents", "biothreat agent"])
E("select agent", B, [(FSAP_HHS, "select agents and toxins (programme term)", "general term")],
  ["select agents", "select agent list", "select agent program", "Federal Select Agent Program", "select agents and toxins"])
E("Biological Weapons Convention", B, [(REGIMES, None, "treaty")],
  ["Biological and Toxin Weapons Convention", "Biological Weapons Convention"], ctx=["BWC"])

# ------------------------------------------------------------------ chemical: CWC schedules
S1 = "Schedule 1A"
E("G-series nerve agents", C, [(CWC, "O-Alkyl (<=C10, incl. cycloalkyl) alkyl (Me, Et, n-Pr or i-Pr) phosphonofluoridates", "Schedule 1A.1")],
  ["G-series nerve agent", "G-agents"])
E("Sarin", C, [(CWC, "Sarin: O-Isopropyl methylphosphonofluoridate", "Schedule 1A.1")],
  ["sarin gas", "O-isopropyl methylphosphonofluoridate"], ctx=["GB"], cas="107-44-8")
E("Soman", C, [(CWC, "Soman: O-Pinacolyl methylphosphonofluoridate", "Schedule 1A.1")],
  ["O-pinacolyl methylphosphonofluoridate"], ctx=["GD"], cas="96-64-0")
E("Cyclosarin", C, [(CWC, "Cyclosarin: O-Cyclohexyl methylphosphonofluoridate", "Schedule 1A.1")],
  ["O-cyclohexyl methylphosphonofluoridate"], ctx=["GF"], cas="329-99-7")
E("Tabun", C, [(CWC, "Tabun: O-Ethyl N,N-dimethyl phosphoramidocyanidate", "Schedule 1A.2")],
  ["O-ethyl N,N-dimethyl phosphoramidocyanidate", "tabun nerve agent"], ctx=["tabun", "GA"], cas="77-81-6",
  note="'tabun' alone is also a bread oven (taboon); it counts only next to a cue word")
E("O-Alkyl N,N-dialkyl phosphoramidocyanidates", C, [(CWC, None, "Schedule 1A.2")])
E("VX", C, [(CWC, "VX: O-Ethyl S-2-diisopropylaminoethyl methyl phosphonothiolate", "Schedule 1A.3")],
  ["O-ethyl S-2-diisopropylaminoethyl methyl phosphonothiolate", "VX nerve agent", "VX gas"], ctx=["VX"], cas="50782-69-9")
E("V-series nerve agents", C,
  [(CWC, "O-Alkyl S-2-dialkylaminoethyl alkylphosphonothiolates and corresponding alkylated or protonated salts", "Schedule 1A.3")],
  ["V-series nerve agent", "V-agents"])
E("Sulfur mustard", C, [(CWC, "Sulfur mustards: 2-Chloroethylchloromethylsulfide ... O-Mustard", "Schedule 1A.4"),
                        (CWC, "Mustard gas: Bis(2-chloroethyl)sulfide", "Schedule 1A.4")],
  ["sulfur mustards", "sulphur mustard", "sulphur mustards", "mustard gas", "mustard agent", "yperite",
   "bis(2-chloroethyl)sulfide", "bis(2-chloroethyl) sulfide"], ctx=["mustard", "HD", "H"], cas="505-60-2")
E("Sesquimustard", C, [(CWC, "Sesquimustard: 1,2-Bis(2-chloroethylthio)ethane", "Schedule 1A.4")],
  ["1,2-bis(2-chloroethylthio)ethane"], ctx=["Q"], cas="3563-36-8")
E("O-Mustard", C, [(CWC, "O-Mustard: Bis(2-chloroethylthioethyl)ether", "Schedule 1A.4")],
  ["bis(2-chloroethylthioethyl)ether"], ctx=["T"], cas="63918-89-8")
for _n, _cas in [("2-Chloroethylchloromethylsulfide", "2625-76-5"), ("Bis(2-chloroethylthio)methane", "63869-13-6"),
                 ("1,3-Bis(2-chloroethylthio)-n-propane", "63905-10-2"), ("1,4-Bis(2-chloroethylthio)-n-butane", "142868-93-7"),
                 ("1,5-Bis(2-chloroethylthio)-n-pentane", "142868-94-8"), ("Bis(2-chloroethylthiomethyl)ether", "63918-90-1")]:
    E(_n, C, [(CWC, None, "Schedule 1A.4")], [], cas=_cas)
E("Lewisite", C, [(CWC, "Lewisites", "Schedule 1A.5"), (CWC, "Lewisite 1: 2-Chlorovinyldichloroarsine", "Schedule 1A.5")],
  ["lewisites", "lewisite 1", "2-chlorovinyldichloroarsine"], ctx=["L1", "L"], cas="541-25-3")
E("Lewisite 2", C, [(CWC, "Lewisite 2: Bis(2-chlorovinyl)chloroarsine", "Schedule 1A.5")],
  ["bis(2-chlorovinyl)chloroarsine"], ctx=["L2"], cas="40334-69-8")
E("Lewisite 3", C, [(CWC, "Lewisite 3: Tris(2-chlorovinyl)arsine", "Schedule 1A.5")],
  ["tris(2-chlorovinyl)arsine"], ctx=["L3"], cas="40334-70-1")
E("Nitrogen mustards", C, [(CWC, None, "Schedule 1A.6")], ["nitrogen mustard", "nitrogen mustard agent"])
E("HN1", C, [(CWC, "HN1: Bis(2-chloroethyl)ethylamine", "Schedule 1A.6")], ["bis(2-chloroethyl)ethylamine"],
  ctx=["HN1"], cas="538-07-8")
E("HN2", C, [(CWC, "HN2: Bis(2-chloroethyl)methylamine", "Schedule 1A.6")],
  ["bis(2-chloroethyl)methylamine", "mechlorethamine", "mustine"], ctx=["HN2"], cas="51-75-2",
  note="also an old cancer drug (mechlorethamine); medical text is expected to be kept by the classifier")
E("HN3", C, [(CWC, "HN3: Tris(2-chloroethyl)amine", "Schedule 1A.6")], ["tris(2-chloroethyl)amine"], ctx=["HN3"], cas="555-77-1")
E("Novichok agents", C,
  [(CWC, "P-alkyl N-(1-(dialkylamino)alkylidene)phosphonamidic fluorides", "Schedule 1A.13"),
   (CWC, "O-alkyl N-(1-(dialkylamino)alkylidene)phosphoramidofluoridates", "Schedule 1A.14"),
   (CWC, "Methyl-(bis(diethylamino)methylene)phosphonamidofluoridate", "Schedule 1A.15")],
  ["Novichok", "Novichoks", "Novichok agent", "Novichok nerve agent", "A-series nerve agents"], ctx=["A-234", "A-232", "A-230"],
  note="Schedule 1A.13-1A.15 were added by the 2019 amendment in force 2020")
E("Carbamate nerve agents (Schedule 1A.16)", C,
  [(CWC, "Carbamates: quaternaries and bisquaternaries of dimethylcarbamoyloxypyridines", "Schedule 1A.16")], [])
E("DF", C, [(CWC, "Alkyl (Me, Et, n-Pr or i-Pr) phosphonyldifluorides", "Schedule 1B.9"),
            (CWC, "DF: Methylphosphonyldifluoride", "Schedule 1B.9"), (AG_CHEM, "Methylphosphonyl difluoride", None)],
  ["methylphosphonyl difluoride", "methylphosphonyldifluoride", "methylphosphonic difluoride"], ctx=["DF"], cas="676-99-3")
E("QL", C, [(CWC, "QL: O-Ethyl O-2-diisopropylaminoethyl methylphosphonite", "Schedule 1B.10"),
            (AG_CHEM, "O-Ethyl O-2-diisopropylaminoethyl methylphosphonite (QL)", None)],
  ["O-ethyl O-2-diisopropylaminoethyl methylphosphonite"], ctx=["QL"], cas="57856-11-8")
E("O-Alkyl O-2-dialkylaminoethyl alkyl phosphonites", C, [(CWC, None, "Schedule 1B.10")])
E("Chlorosarin", C, [(CWC, "Chlorosarin: O-Isopropyl methylphosphonochloridate", "Schedule 1B.11")],
  ["O-isopropyl methylphosphonochloridate"], cas="1445-76-7")
E("Chlorosoman", C, [(CWC, "Chlorosoman: O-Pinacolyl methylphosphonochloridate", "Schedule 1B.12")],
  ["O-pinacolyl methylphosphonochloridate"], cas="7040-57-5")
E("Amiton", C, [(CWC, "Amiton: O,O-Diethyl S-[2-(diethylamino)ethyl] phosphorothiolate", "Schedule 2A.1")],
  ["O,O-diethyl S-[2-(diethylamino)ethyl] phosphorothiolate"], ctx=["VG"], cas="78-53-5")
E("PFIB", C, [(CWC, "PFIB: 1,1,3,3,3-Pentafluoro-2-(trifluoromethyl)-1-propene", "Schedule 2A.2")],
  ["perfluoroisobutylene", "perfluoroisobutene"], cas="382-21-8")
E("BZ", C, [(CWC, "BZ: 3-Quinuclidinyl benzilate", "Schedule 2A.3")],
  ["3-quinuclidinyl benzilate", "quinuclidinyl benzilate", "QNB"], ctx=["BZ"], cas="6581-06-2")
E("Methylphosphonyl dichloride", C, [(CWC, "Chemicals containing a phosphorus atom bonded to one methyl, ethyl or propyl group", "Schedule 2B.4"),
                                     (AG_CHEM, None, None)], ["methylphosphonic dichloride"], cas="676-97-1")
E("N,N-Dialkyl phosphoramidic dihalides", C, [(CWC, None, "Schedule 2B.5")])
E("Dialkyl N,N-dialkyl phosphoramidates", C, [(CWC, None, "Schedule 2B.6")])
E("Arsenic trichloride", C, [(CWC, None, "Schedule 2B.7"), (AG_CHEM, None, None)], [], cas="7784-34-1")
E("Benzilic acid", C, [(CWC, "2,2-Diphenyl-2-hydroxyacetic acid", "Schedule 2B.8"), (AG_CHEM, None, None)],
  ["2,2-diphenyl-2-hydroxyacetic acid"], cas="76-93-7")
E("3-Quinuclidinol", C, [(CWC, "Quinuclidin-3-ol", "Schedule 2B.9"), (AG_CHEM, None, None)], ["quinuclidin-3-ol"], cas="1619-34-7")
E("N,N-Dialkyl aminoethyl-2-chlorides", C, [(CWC, "N,N-Dialkyl aminoethyl-2-chlorides and corresponding protonated salts", "Schedule 2B.10")])
E("N,N-Dialkyl aminoethane-2-ols", C, [(CWC, "N,N-Dialkyl aminoethane-2-ols and corresponding protonated salts", "Schedule 2B.11")])
E("N,N-Dialkyl aminoethane-2-thiols", C, [(CWC, "N,N-Dialkyl aminoethane-2-thiols and corresponding protonated salts", "Schedule 2B.12")])
E("Thiodiglycol", C, [(CWC, "Thiodiglycol: Bis(2-hydroxyethyl)sulfide", "Schedule 2B.13"), (AG_CHEM, None, None)],
  ["bis(2-hydroxyethyl)sulfide"], ctx=["TDG"], cas="111-48-8")
E("Pinacolyl alcohol", C, [(CWC, "Pinacolyl alcohol: 3,3-Dimethylbutan-2-ol", "Schedule 2B.14"), (AG_CHEM, None, None)],
  ["3,3-dimethylbutan-2-ol"], cas="464-07-3")
E("Phosgene", C, [(CWC, "Phosgene: Carbonyl dichloride", "Schedule 3A.1")], ["carbonyl dichloride", "carbonyl chloride"],
  ctx=["CG"], cas="75-44-5")
E("Cyanogen chloride", C, [(CWC, None, "Schedule 3A.2")], [], ctx=["CK"], cas="506-77-4")
E("Hydrogen cyanide", C, [(CWC, None, "Schedule 3A.3")], ["hydrocyanic acid", "prussic acid"], ctx=["AC"], cas="74-90-8")
E("Chloropicrin", C, [(CWC, "Chloropicrin: Trichloronitromethane", "Schedule 3A.4")], ["trichloronitromethane"],
  ctx=["PS"], cas="76-06-2")
E("Phosphorus oxychloride", C, [(CWC, None, "Schedule 3B.5"), (AG_CHEM, None, None)], ["phosphoryl chloride"], cas="10025-87-3")
E("Phosphorus trichloride", C, [(CWC, None, "Schedule 3B.6"), (AG_CHEM, None, None)], [], cas="7719-12-2")
E("Phosphorus pentachloride", C, [(CWC, None, "Schedule 3B.7"), (AG_CHEM, None, None)], [], cas="10026-13-8")
E("Trimethyl phosphite", C, [(CWC, None, "Schedule 3B.8"), (AG_CHEM, None, None)], [], cas="121-45-9")
E("Triethyl phosphite", C, [(CWC, None, "Schedule 3B.9"), (AG_CHEM, None, None)], [], cas="122-52-1")
E("Dimethyl phosphite", C, [(CWC, None, "Schedule 3B.10"), (AG_CHEM, None, None)], ["dimethyl hydrogen phosphite"], cas="868-85-9")
E("Diethyl phosphite", C, [(CWC, None, "Schedule 3B.11"), (AG_CHEM, None, None)], ["diethyl hydrogen phosphite"], cas="762-04-9")
E("Sulfur monochloride", C, [(CWC, None, "Schedule 3B.12"), (AG_CHEM, "Sulphur monochloride", None)],
  ["sulphur monochloride", "disulfur dichloride"], cas="10025-67-9")
E("Sulfur dichloride", C, [(CWC, None, "Schedule 3B.13"), (AG_CHEM, "Sulphur dichloride", None)], ["sulphur dichloride"], cas="10545-99-0")
E("Thionyl chloride", C, [(CWC, None, "Schedule 3B.14"), (AG_CHEM, None, None)], [], cas="7719-09-7")
E("Ethyldiethanolamine", C, [(CWC, None, "Schedule 3B.15"), (AG_CHEM, None, None)], ["N-ethyldiethanolamine"], cas="139-87-7")
E("Methyldiethanolamine", C, [(CWC, None, "Schedule 3B.16")], ["N-methyldiethanolamine"], ctx=["MDEA"], cas="105-59-9")
E("Triethanolamine", C, [(CWC, None, "Schedule 3B.17"), (AG_CHEM, None, None)], [], ctx=["TEA"], cas="102-71-6")
# Australia Group precursors not already above (name, CAS or None where not certain)
for _n, _cas, _al in [
    ("Dimethyl methylphosphonate", "756-79-6", ["DMMP"]), ("3-Hydroxy-1-methylpiperidine", "3554-74-3", []),
    ("N,N-Diisopropyl-2-aminoethyl chloride", "96-79-7", []), ("N,N-Diisopropyl-2-aminoethane thiol", "5842-07-9", []),
    ("Potassium fluoride", "7789-23-3", []), ("2-Chloroethanol", "107-07-3", ["ethylene chlorohydrin"]),
    ("Dimethylamine", "124-40-3", []), ("Diethyl ethylphosphonate", "78-38-6", []),
    ("Diethyl N,N-dimethylphosphoramidate", "2404-03-7", []), ("Dimethylamine hydrochloride", "506-59-2", []),
    ("Ethylphosphinyl dichloride", None, []), ("Ethylphosphonyl dichloride", "1066-50-8", []),
    ("Ethylphosphonyl difluoride", "753-98-0", []), ("Hydrogen fluoride", "7664-39-3", []),
    ("Methyl benzilate", "76-89-1", []), ("Methylphosphinyl dichloride", None, []),
    ("N,N-Diisopropyl-2-aminoethanol", "96-80-0", []), ("Diethyl methylphosphonite", "15715-41-0", []),
    ("Dimethyl ethylphosphonate", "6163-75-3", []), ("Ethylphosphinyl difluoride", None, []),
    ("Methylphosphinyl difluoride", None, []), ("3-Quinuclidone", "3731-38-2", ["quinuclidin-3-one"]),
    ("Pinacolone", "75-97-8", []), ("Potassium cyanide", "151-50-8", []), ("Potassium bifluoride", "7789-29-9", []),
    ("Ammonium bifluoride", "1341-49-7", []), ("Sodium fluoride", "7681-49-4", []), ("Sodium bifluoride", "1333-83-1", []),
    ("Sodium cyanide", "143-33-9", []), ("Phosphorus pentasulfide", "1314-80-3", ["phosphorus pentasulphide"]),
    ("Di-isopropylamine", "108-18-9", ["diisopropylamine"]), ("Diethylaminoethanol", "100-37-8", ["2-diethylaminoethanol"]),
    ("Sodium sulfide", "1313-82-2", ["sodium sulphide"]), ("Triethanolamine hydrochloride", "637-39-8", []),
    ("N,N-Diisopropyl-2-aminoethyl chloride hydrochloride", "4261-68-1", []), ("Methylphosphonic acid", "993-13-5", []),
    ("Diethyl methylphosphonate", "683-08-9", []), ("N,N-Dimethylaminophosphoryl dichloride", "677-43-0", []),
    ("Triisopropyl phosphite", "116-17-6", []), ("O,O-Diethyl phosphorothioate", "2465-65-8", []),
    ("O,O-Diethyl phosphorodithioate", "298-06-6", []), ("Sodium hexafluorosilicate", "16893-85-9", []),
    ("Methylphosphonothioic dichloride", "676-98-2", []), ("Diethylamine", "109-89-7", []),
    ("N,N-Diisopropylaminoethanethiol hydrochloride", None, []),
]:
    E(_n, C, [(AG_CHEM, None, None)], _al, cas=_cas)
# CWC general terms
E("chemical weapon", C, [(CWC_GEN, None, "general term")],
  ["chemical weapons", "chemical warfare", "chemical warfare agent", "chemical warfare agents", "chemical munitions"], ctx=["CW"])
E("nerve agent", C, [(CWC_GEN, None, "general term")],
  ["nerve agents", "nerve gas", "nerve gases", "organophosphorus nerve agent"])
E("blister agent", C, [(CWC_GEN, None, "general term")], ["blister agents", "vesicant", "vesicants"])
E("choking agent", C, [(CWC_GEN, None, "general term")], ["choking agents", "pulmonary agent", "lung-damaging agent"])
E("blood agent", C, [(CWC_GEN, None, "general term")], ["blood agents"])
E("chemical agent", C, [(CWC_GEN, "toxic chemicals and their precursors (Art. II)", "general term")],
  ["chemical agents", "chemical threat agents", "chemical terrorism"])
E("Chemical Weapons Convention", C, [(REGIMES, None, "treaty")],
  ["Chemical Weapons Convention", "Organisation for the Prohibition of Chemical Weapons",
   "Organization for the Prohibition of Chemical Weapons", "OPCW"], ctx=["CWC"])
E("Australia Group", C, [(REGIMES, None, "export-control regime")], ["Australia Group"],
  note="the regime covers chemical and biological items; filed under chemical")
E("incapacitating agent", C, [(CWC_GEN, None, "general term")], ["incapacitating agents", "incapacitant"])

# ------------------------------------------------------------------ radiological: IAEA
CAT = "Category 1-3 by activity/D ratio"
for _name, _sym, _a, _cas, _extra in [
    ("Americium", "Am", 241, "14596-10-2", []), ("Californium", "Cf", 252, None, []), ("Curium", "Cm", 244, None, []),
    ("Cobalt", "Co", 60, "10198-40-0", ["radiocobalt"]), ("Caesium", "Cs", 137, "10045-97-3", ["radiocaesium", "radiocesium"]),
    ("Gadolinium", "Gd", 153, None, []), ("Iridium", "Ir", 192, None, []), ("Promethium", "Pm", 147, None, []),
    ("Plutonium", "Pu", 238, None, []), ("Radium", "Ra", 226, "13982-63-3", []), ("Selenium", "Se", 75, None, []),
    ("Strontium", "Sr", 90, "10098-97-2", ["Sr-90/Y-90"]), ("Thulium", "Tm", 170, None, []), ("Ytterbium", "Yb", 169, None, []),
]:
    E(f"{_name}-{_a}", R, [(IAEA_COC, None, CAT)], _extra, cas=_cas)
    ROWS[-1]["isotope"] = {"element": _name, "symbol": _sym, "mass": _a}
E("Americium-241/beryllium", R, [(IAEA_COC, "Am-241/Be", CAT)], ["Am-241/Be", "AmBe source", "americium-beryllium source"])
E("Plutonium-239/beryllium", R, [(IAEA_COC, "Pu-239/Be", CAT)], ["Pu-239/Be", "PuBe source", "plutonium-beryllium source"])
for _name, _sym, _a, _cas in [
    ("Gold", "Au", 198, None), ("Cadmium", "Cd", 109, None), ("Cobalt", "Co", 57, None), ("Iron", "Fe", 55, None),
    ("Germanium", "Ge", 68, None), ("Nickel", "Ni", 63, None), ("Palladium", "Pd", 103, None),
    ("Polonium", "Po", 210, "13981-52-7"), ("Ruthenium", "Ru", 106, None), ("Thallium", "Tl", 204, None),
]:
    E(f"{_name}-{_a}", R, [(IAEA_D, None, "D-value listed")], [], cas=_cas)
    ROWS[-1]["isotope"] = {"element": _name, "symbol": _sym, "mass": _a}
E("radiological dispersal device", R, [(IAEA_NSS, None, "general term")],
  ["radiological dispersal devices", "dirty bomb", "dirty bombs", "radiological weapon", "radiological weapons"], ctx=["RDD"])
E("radiological exposure device", R, [(IAEA_NSS, None, "general term")], ["radiological exposure devices"])
E("high-activity sealed radioactive source", R, [(IAEA_NSS, None, "general term")],
  ["high activity sealed source", "high-activity sealed source"], ctx=["HASS", "Category 1 source", "Category 2 source"])
E("sealed radioactive source", R, [(IAEA_NSS, None, "general term")],
  ["sealed radioactive sources", "sealed source", "sealed sources", "disused sealed source", "disused sealed sources",
   "disused source", "disused sources", "radioactive source", "radioactive sources"])
E("nuclear terrorism", R, [(IAEA_NSS, None, "general term")], ["radiological terrorism", "nuclear security"])
E("orphan source", R, [(IAEA_NSS, None, "general term")], ["orphan radioactive source", "orphan radioactive sources"],
  ctx=["orphan source", "orphan sources"], note="'orphan source' alone also occurs in software packaging text")

# ------------------------------------------------------------------ nuclear: IAEA nuclear material terms, NPT terms
for _name, _sym, _a, _cas in [("Plutonium", "Pu", 239, "15117-48-3"), ("Uranium", "U", 235, "15117-96-1"),
                              ("Uranium", "U", 233, None), ("Neptunium", "Np", 237, None)]:
    E(f"{_name}-{_a}", N, [(IAEA_NM, None, "INFCIRC/225 categorised material" if _sym != "Np" else "alternative nuclear material")],
      [], cas=_cas)
    ROWS[-1]["isotope"] = {"element": _name, "symbol": _sym, "mass": _a}
E("Plutonium", N, [(IAEA_NM, None, "special fissionable material")],
  ["weapons-grade plutonium", "reactor-grade plutonium", "separated plutonium", "plutonium pits", "plutonium pit"],
  ctx=["Pu"], cas="7440-07-5")
E("Highly enriched uranium", N, [(IAEA_NM, None, "INFCIRC/225 Category I-III")], ["weapons-grade uranium", "HEU"])
E("Low enriched uranium", N, [(IAEA_NM, None, "INFCIRC/225 Category II-III")], ["low-enriched uranium"], ctx=["LEU"])
E("Enriched uranium", N, [(IAEA_NM, "Uranium enriched in the isotopes 235 or 233", "special fissionable material")],
  ["uranium enrichment"])
E("Natural uranium", N, [(IAEA_NM, None, "source material")], [])
E("Depleted uranium", N, [(IAEA_NM, None, "source material")], ["depleted uranium munitions"], ctx=["DU"])
E("Thorium", N, [(IAEA_NM, None, "source material")], ["thorium-232", "Th-232"], cas="7440-29-1")
E("Uranium", N, [(IAEA_NM, None, "source material")], [], ctx=["U"], cas="7440-61-1")
E("Special fissionable material", N, [(IAEA_NM, None, "nuclear-material term")],
  ["fissile material", "fissile materials", "special nuclear material", "weapons-usable material", "weapon-usable nuclear material"],
  ctx=["SNM"])
E("Source material", N, [(IAEA_NM, None, "nuclear-material term")], [], ctx=["source material"],
  note="everyday phrase; counts only next to a nuclear cue word")
E("Irradiated fuel", N, [(IAEA_NM, None, "INFCIRC/225 categorised material")], ["spent nuclear fuel", "spent fuel"])
E("Mixed oxide fuel", N, [(IAEA_NM, None, "nuclear-material term")], ["MOX fuel", "mixed-oxide fuel"], ctx=["MOX"])
E("Uranium hexafluoride", N, [(IAEA_NM, None, "nuclear-material term")], ["UF6"], ctx=["hex"], cas="7783-81-5")
E("Uranium ore concentrate", N, [(IAEA_NM, None, "source material")], ["yellowcake", "yellow cake uranium"], ctx=["UOC"])
E("Americium (alternative nuclear material)", N, [(IAEA_NM, "Am-241/Am-243", "alternative nuclear material")],
  ["americium-243", "Am-243"], note="NSG / IAEA 'alternative nuclear material' term, not an INFCIRC/225 category")
E("Tritium", N, [(IAEA_NM, "tritium", "NSG controlled material")], ["hydrogen-3"], ctx=["H-3"],
  note="Nuclear Suppliers Group controlled material, not an INFCIRC/225 category")
E("nuclear test", N, [(REGIMES, "Comprehensive Nuclear-Test-Ban Treaty (nuclear explosion tests)", "general term")],
  ["nuclear tests", "nuclear testing", "nuclear weapons test", "nuclear weapons tests", "atmospheric testing",
   "Comprehensive Nuclear-Test-Ban Treaty", "Comprehensive Test Ban Treaty"], ctx=["CTBT"])
E("nuclear proliferation", N, [(NPT_GEN, None, "general term")],
  ["nuclear nonproliferation", "nuclear non-proliferation", "Non-Proliferation Treaty", "Nonproliferation Treaty",
   "Treaty on the Non-Proliferation of Nuclear Weapons", "nuclear arsenal", "nuclear arsenals", "strategic warheads",
   "IAEA safeguards", "nuclear safeguards"], ctx=["NPT"])
E("weapons of mass destruction", N, [(REGIMES, "UN Security Council resolution 1540 (weapons of mass destruction)", "general term")],
  ["weapon of mass destruction"], ctx=["WMD"], note="covers all of CBRN; filed under nuclear")
E("Nuclear weapon", N, [(NPT_GEN, None, "general term")],
  ["nuclear weapons", "nuclear explosive device", "nuclear explosive devices", "atomic bomb", "atomic bombs", "atom bomb",
   "fission weapon", "fission bomb", "thermonuclear weapon", "thermonuclear weapons", "hydrogen bomb", "nuclear warhead",
   "nuclear warheads", "nuclear bomb", "nuclear bombs", "H-bomb"])
