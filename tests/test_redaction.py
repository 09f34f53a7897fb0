import base64
import json
import logging
from urllib.parse import quote

from windflow.redaction import MASK, RedactingFilter, Redactor, redact, secrets_in_scope


def test_it_masks_a_value_and_a_longer_value_that_contains_it():
    redactor = Redactor(["hunter22", "hunter22-and-more"])
    assert redactor.redact("a=hunter22-and-more b=hunter22") == f"a={MASK} b={MASK}"


def test_it_masks_each_line_of_a_multi_line_value():
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\nGkxFhD90vcNLYLInFEX\n-----END KEY-----"
    redactor = Redactor([key])
    assert "MIIBOgIBAAJBAKj34" not in redactor.redact("line: MIIBOgIBAAJBAKj34")
    assert redactor.redact(key) == MASK


def test_it_masks_base64_forms_even_inside_longer_base64():
    secret = "s3cr3t-Passw0rd"
    redactor = Redactor([secret])
    assert redactor.redact(base64.b64encode(secret.encode()).decode()) == MASK
    for prefix in (b"user:", b"u:", b"ab:"):  # every alignment in an Authorization header
        basic = base64.b64encode(prefix + secret.encode()).decode()
        masked = redactor.redact(f"Authorization: Basic {basic}")
        assert MASK in masked and basic not in masked
    assert MASK in redactor.redact(base64.urlsafe_b64encode(secret.encode()).decode())


def test_it_masks_json_and_url_escaped_forms():
    secret = 'pa"ss\nword&x=1'
    redactor = Redactor([secret])
    assert MASK in redactor.redact(json.dumps({"password": secret}))
    assert MASK in redactor.redact(f"https://x/?p={quote(secret, safe='')}")


def test_it_masks_only_inside_the_scope():
    assert redact("token abcd1234") == "token abcd1234"
    with secrets_in_scope(["abcd1234"]):
        assert redact("token abcd1234") == f"token {MASK}"
    assert redact("token abcd1234") == "token abcd1234"


def test_it_filters_log_records_and_tracebacks(caplog):
    logger = logging.getLogger("windflow.test.redaction")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with secrets_in_scope(["topsecret-42"]):
            logger.warning("connecting with %s", "topsecret-42")
            try:
                raise ValueError("bad password topsecret-42")
            except ValueError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "topsecret-42" not in caplog.text
    assert caplog.text.count(MASK) >= 2


def test_it_keeps_secret_values_out_of_api_error_bodies():
    from windflow.api.errors import error_body

    with secrets_in_scope(["leaky-value-99"]):
        body = error_body(400, "invalid", "bad leaky-value-99", {"value": ["leaky-value-99"]})
    assert "leaky-value-99" not in json.dumps(body)


def test_it_masks_every_string_of_json_data_keys_included():
    redactor = Redactor(["json-secret-1"])
    data = {"detail": ["a json-secret-1 b", {"json-secret-1": 3}], "n": 1, "none": None}
    assert redactor.redact_data(data) == {
        "detail": [f"a {MASK} b", {MASK: 3}],
        "n": 1,
        "none": None,
    }


def test_it_masks_a_value_cut_at_the_edge_of_a_bounded_text():
    value = "canary0123456789abcdef"
    redactor = Redactor([value])
    assert redactor.redact(f"image not found: reg/{value[:12]}…", edges=True) == (
        f"image not found: reg/{MASK}…"
    )
    assert redactor.redact(f"…{value[9:]}\nlast line", edges=True) == f"…{MASK}\nlast line"
    encoded = base64.b64encode(value.encode()).decode()
    assert redactor.redact(f"out {encoded[:16]}", edges=True) == f"out {MASK}"
    # Without `edges` (container log lines are never cut) only whole forms are masked.
    assert redactor.redact(f"x {value[:12]}") == f"x {value[:12]}"
    # A short piece is not a guess worth making.
    assert redactor.redact("ends with canar", edges=True) == "ends with canar"


def test_it_remembers_a_redactor_briefly_and_only_in_this_process():
    from windflow.redaction import Memo

    built = []

    def build():
        built.append(1)
        return Redactor(["memo-secret-1"])

    memo = Memo(seconds=60)
    first = memo.get(("acme", 1), build)
    assert memo.get(("acme", 1), build) is first and len(built) == 1
    assert memo.get(("acme", 2), build) is not first and len(built) == 2
    expired = Memo(seconds=0)
    expired.get("k", build)
    expired.get("k", build)
    assert len(built) == 4


def test_it_masks_log_records_of_threads_started_inside_a_scope(caplog):
    """A deployment's driver logs from its own threads (pulls, services): their records are
    masked too, although a new thread does not inherit the scope's context."""
    import threading

    logger = logging.getLogger("windflow.test.redaction.threads")
    handler_filter = RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with secrets_in_scope(["thread-secret-77"]):
            worker = threading.Thread(
                target=lambda: logger.warning("GET /images/reg/thread-secret-77:1/json")
            )
            worker.start()
            worker.join()
        logger.warning("after the scope: thread-secret-77")
    finally:
        caplog.handler.removeFilter(handler_filter)
    first, after = caplog.records[-2:]
    assert first.getMessage() == f"GET /images/reg/{MASK}:1/json"
    assert after.getMessage() == "after the scope: thread-secret-77"
