"""Knowledge Builder: a graph of a code base (modules, classes, functions, imports, calls), its entities and metrics."""
