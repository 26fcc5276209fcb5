"""The fault-injection suite (`make test-faults`): the real API under load while its
dependencies fail and come back. `python -m eval.faults --help`; see `runner.py`.
"""
