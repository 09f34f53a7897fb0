"""The errors a page shows in the browser (JavaScript errors, console errors such as CSP
refusals or failed assets), for the browser tests to assert there are none."""


def watch_errors(page) -> list[str]:
    """JavaScript errors and console errors (CSP refusals, failed assets...) of the page."""
    errors: list[str] = []

    def on_console(message):
        if message.type == "error":
            errors.append(f"console: {message.text} {message.location}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    return errors


def real_errors(errors: list[str]) -> list[str]:
    # No favicon yet (reported); everything else counts.
    return [e for e in errors if "/favicon.ico" not in e]
