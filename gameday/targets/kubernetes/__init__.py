"""The kubernetes target: API access as chaostoolkit-kubernetes does it, the objects it
creates (NetworkPolicies, labels), its settings and its leftovers check."""
