"""The registry of probes (:data:`probes.base.PROBES`): every ``@register_probe`` class of this
package, found by name without importing its module; ``PROBES.get(name)`` imports it."""

from probes.base import PROBES

__all__ = ["PROBES"]
