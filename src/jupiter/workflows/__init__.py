"""Remediation workflows: typed definitions (:mod:`.definitions`), loading
(:mod:`.loading`), and the stages the runner walks through."""
