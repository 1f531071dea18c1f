import random
import string
import unicodedata

from curation.text import canonical_form, canonical_words, exact_hash, normalize_text


def test_it_composes_unicode_to_nfc():
    decomposed = "Cafe\u0301"
    assert normalize_text(decomposed) == "Caf\u00e9"
    assert canonical_form(decomposed) == "caf\u00e9"


def test_it_collapses_whitespace_but_keeps_paragraphs():
    text = "  Hello\u00a0\t world  \r\n\r\n\r\n\r\nSecond   line\u200b here \n"
    assert normalize_text(text) == "Hello world\n\nSecond line here"


def test_it_leaves_the_original_string_alone():
    text = "  Keep ME, as-is: 42!  "
    normalize_text(text)
    canonical_form(text)
    assert text == "  Keep ME, as-is: 42!  "


def test_it_builds_a_canonical_form_for_hashing():
    assert canonical_form("Hello, WORLD!  It's 2024...\n\tOK?") == "hello world it s 0000 ok"
    assert canonical_form("end.Start") == "end start"
    assert canonical_form("Straße") == "strasse"
    assert canonical_form("   ") == ""
    assert canonical_words("") == []
    assert canonical_words("A  b,c") == ["a", "b", "c"]


def test_it_folds_unicode_digits():
    assert canonical_form("Room \u0663\u0664 and 56") == "room 00 and 00"


def test_it_gives_equal_exact_hashes_to_cosmetic_variants():
    base = exact_hash("The answer is 42.")
    assert base == exact_hash("the   ANSWER is 17!")
    assert base != exact_hash("The answer is not 42.")
    assert len(base) == 64
    assert int(base, 16) >= 0


def reference_canonical(text):
    """The definition, one character at a time."""
    out = []
    for char in unicodedata.normalize("NFC", text).casefold():
        category = unicodedata.category(char)
        if category == "Nd":
            out.append("0")
        elif category[0] in "PSZ" or category in ("Cc", "Cf"):
            out.append(" ")
        else:
            out.append(char)
    return " ".join("".join(out).split())


def test_it_canonicalises_like_the_per_character_definition():
    rng = random.Random(0)
    alphabet = (
        string.printable
        + "éèçÉÀßæøÅ—–…“”‘’«»©®™°±×÷€£¥•·¡¿"
        + "абвгдЖЗИ"
        + "中文字符。，、"
        + "٠١٢٣४५"
        + "\u00a0\u2009\u200b\u2028\u00ad"
        + "😀🎉👍🏽"
        + "e\u0301"
    )
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert canonical_form(text) == reference_canonical(text), repr(text)
