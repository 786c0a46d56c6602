"""sevis benchmarks (not part of the test suite): `python -m bench`; see docs/PERFORMANCE.md."""
