"""SAE features of an attached SAE (`Model.attach_sae`, `interp.engine.sae_sites`): steering with
them (`steer`), what they do to the logits (`attribution`: direct logit effect, per-prompt
feature DLA, attribution patching), their top-activating contexts (`explore`, the run
`steerlens sae features` writes and the explorer's SAE page reads), figures and `cli`.
"""
