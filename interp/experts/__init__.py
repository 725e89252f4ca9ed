"""MoTE: behaviour-specific mixture-of-experts experts, found by association and confirmed
causally by toggling them ("Mixture of Tunable Experts", arXiv 2502.11096).
"""
