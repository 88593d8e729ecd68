from hypothesis import given, settings, strategies as st

from filters.normalize import exact_view, leet_view, offset_map, original_span, normalize_term


def test_folds():
    assert exact_view("Ѕаrіn") == "sarin"                       # Cyrillic look-alikes
    assert exact_view("sa\u200brin\u00ad") == "sarin"            # zero width, soft hyphen
    assert exact_view("ＣＳ－１３７") == "cs 137"                  # full width (NFKC)
    assert exact_view("Junín") == "junin"                        # accents
    assert exact_view("𝐬𝐚𝐫𝐢𝐧") == "sarin"                        # math alphanumerics
    assert leet_view(exact_view("S4R1N")) == leet_view("sarin")
    assert normalize_term("Crimean-Congo  fever") == "crimean congo fever"


def test_leet_view_keeps_length_and_digits_stay_in_exact():
    e = exact_view("Pu-239 and Cs-137")
    assert len(leet_view(e)) == len(e)
    assert "239" in e and "137" in e


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_offset_map_points_into_original(text):
    e = exact_view(text)
    m = offset_map(text)
    assert len(m) == len(e) + 1
    assert all(0 <= m[i] < len(text) for i in range(len(e)))
    assert list(m[:-1]) == sorted(m[:-1])
    if e:
        s, t = original_span(m, 0, len(e))
        assert 0 <= s < t <= len(text)
