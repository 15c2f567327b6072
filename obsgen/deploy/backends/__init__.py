"""Backends: one small client per target behind one narrow interface.

Each backend turns build artifacts into desired `Obj`s, reads and normalises the
live state into `Obj`s, applies a list of changes, and can restore what it
applied. `obsgen.plan.plan` does the comparing; backends never diff.
"""
