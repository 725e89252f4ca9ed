"""Policy-gate routing: per-head interchange screens of refusal circuits, knockout cascade,
modulation, cipher collapse and rescue ("How Alignment Routes", arXiv 2604.04385).

The fast screen (batched exact interchange and attribution patching) is `interp.routing.screen`.
"""
