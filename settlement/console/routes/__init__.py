"""The console's pages, one router per subject: each reads through the API's
query modules (or `settlement.console.queries`) and renders a template."""
