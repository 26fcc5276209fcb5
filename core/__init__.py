"""Shared kernel: settings, domain types, ports and the exception tree.

Every other package depends on this one; it depends on none of them.
"""
