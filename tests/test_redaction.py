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
