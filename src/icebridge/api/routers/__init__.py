"""One router per resource; each route builds the app layer's request, calls one service, returns its result."""
