import pytest

from curation.pii import find_pii, luhn_valid, redact


def kinds(text):
    return [(match.kind, text[match.start : match.end]) for match in find_pii(text)]


def test_it_finds_email_addresses():
    text = "Mail alice.smith+tag@example.co.uk or bob@mail.example.org, not user@localhost."
    assert kinds(text) == [
        ("email", "alice.smith+tag@example.co.uk"),
        ("email", "bob@mail.example.org"),
    ]
    assert redact(text) == "Mail [EMAIL] or [EMAIL], not user@localhost."


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (415) 555-2671",
        "415-555-2671",
        "(415) 555-2671",
        "+44 20 7946 0958",
        "020 7946 0958",
        "+4915112345678",
    ],
)
def test_it_finds_phone_numbers(phone):
    assert redact(f"Call me on {phone} tonight.") == "Call me on [PHONE] tonight."


def test_it_finds_luhn_valid_cards_only():
    text = "Visa 4111 1111 1111 1111, 4111-1111-1111-1111, 4111111111111111, amex 3782 822463 10005."
    assert [kind for kind, _ in kinds(text)] == ["card"] * 4
    assert redact("bad 4111 1111 1111 1112") == "bad 4111 1111 1111 1112"
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_it_does_not_call_a_luhn_valid_run_of_zeros_a_card():
    assert find_pii("0000 0000 0000 0000") == []


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("key: sk-proj-abcDEF1234567890ghijKLMNOP", "sk-proj-abcDEF1234567890ghijKLMNOP"),
        ("token ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
        ('api_key = "a8f5f167f44f4964e6c998dee827110c"', "a8f5f167f44f4964e6c998dee827110c"),
        ("Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("DB password: hunter2!!", "hunter2!!"),
    ],
)
def test_it_finds_secrets(text, secret):
    assert kinds(text) == [("secret", secret)]
    assert "[SECRET]" in redact(text)
    assert secret not in redact(text)


def test_it_redacts_a_whole_private_key_block():
    text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabcd\n-----END RSA PRIVATE KEY-----\nbye"
    assert redact(text) == "key:\n[SECRET]\nbye"


@pytest.mark.parametrize(
    "text",
    [
        'api_key = "YOUR_API_KEY_HERE"',
        "password = request.POST['password']",
        "password = os.environ['DB_PASSWORD']",
        "secret_key = settings.SECRET_KEY",
        "token: <token>",
        "Released 2024-01-15 10:30:00, also 2024/01/15 and 15.01.2024.",
        "Python 3.11.7, v1.2.3, release 2.0.0, build 20240115.1",
        "IP 192.168.100.200 and 10.0.0.1",
        "order 42, year 1999, 1234567, ts 1700000000",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "ISBN 978-3-16-148410-0",
        "pi is 3.14159265358979",
        "scores 10 20 30 40 50",
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ],
)
def test_it_avoids_false_positives(text):
    assert find_pii(text) == []


def test_it_prefers_the_more_specific_kind_on_overlap():
    # A card number also matches the phone pattern's digit budget.
    text = "pay with 5555 5555 5555 4444 now"
    assert kinds(text) == [("card", "5555 5555 5555 4444")]


def test_it_filters_by_kind():
    text = "alice@example.com 415-555-2671"
    assert redact(text, kinds=["email"]) == "[EMAIL] 415-555-2671"
    with pytest.raises(ValueError):
        find_pii(text, kinds=["ssn"])
