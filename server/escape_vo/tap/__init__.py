"""TAP 1.1: synchronous queries, examples; VOSI endpoints live in escape_vo.vosi."""
