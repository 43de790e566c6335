"""Demo data: seeded synthetic spectra in real archive FITS formats, plus files to reject.

Entry points live in escape_vo.demo.generate (generate_demo, write_bad_files, DemoTruth).
"""
