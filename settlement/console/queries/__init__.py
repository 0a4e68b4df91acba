"""The console's own reads, for what no API endpoint answers: the daily series of
the overview's chart, overdue claims oldest first, the replay status. Every other
figure comes from the API's query modules (`settlement.api.queries`), so the
console and the API show the same numbers."""
