"""One module per phase of the flow. Phases never import each other; only the runner imports them all."""
