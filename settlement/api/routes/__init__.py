"""The finance API's endpoints, one router per resource: each route reads its
parameters, asks `settlement.api.queries.<resource>` and renders the answer."""
