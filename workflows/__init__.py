"""Reference genomics workflows (germline, somatic) and the pure-Python tools they use."""
