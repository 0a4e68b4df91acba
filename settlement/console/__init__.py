"""The finance console: web pages for finance staff and auditors, served by the
finance API under `/console` (`app.mount_console`).

Server-rendered (Jinja2 templates, readable without JavaScript; the vendored
htmx only makes navigation lighter), signed in with the API's bearer tokens and
roles (`sessions`, `guard`), in English or Japanese (`i18n`). Every figure is
the API's: the pages read through `settlement.api.queries` and the API's row
functions, write amounts with `formatting` (exact, never through a float), and
offer each table as the API's CSV of the same page. `queries/` holds the few
reads no endpoint answers (the 90-day series, overdue claims first, the replay
status). See docs/console.md.
"""
