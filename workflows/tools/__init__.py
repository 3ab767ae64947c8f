"""Tools used by the reference workflows: read simulator, truth comparison, somatic classifier."""
