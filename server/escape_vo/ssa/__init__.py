"""SSA 1.1 (Simple Spectral Access): queryData over the ssa.ssa view, as ADQL.

An SSA request is parsed (params.py, rangelist.py), turned into one ADQL query on ssa.ssa
(query.py) and run by the same translator and executor as TAP, so positions use the HEALPix
index and the reader role; the response (response.py) is the SSA VOTable with the utypes of
schema/ssa.yaml, one row per spectrum and format, and DataLink/SODA service descriptors.
"""
