"""VOSI 1.1: capabilities, availability and tables documents for each service."""
